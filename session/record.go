package session

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrShortRecord: the bytes given hold only the start of a record.
var ErrShortRecord = errors.New("record continues past the bytes given")

// RecordLen returns the length of the framed record at the start of b,
// framing included, as soon as b holds its header; ErrShortRecord when it
// does not yet. A reader of a save's chunks uses it to know how many more
// bytes a record needs.
func RecordLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, ErrShortRecord
	}
	n, k := binary.Uvarint(b[1:])
	switch {
	case k == 0:
		return 0, ErrShortRecord
	case k < 0 || n > 1<<40:
		return 0, fmt.Errorf("decode record: bad length: %w", ErrCorrupt)
	}
	return 1 + k + int(n) + 4, nil
}

// DecodeRecord decodes the framed record at the start of b (its CRC
// checked) and returns the node it holds (nil for a header or trailer)
// and its length. A record longer than b is ErrShortRecord.
func DecodeRecord(b []byte) (*Node, int, error) {
	size, err := RecordLen(b)
	if err != nil {
		return nil, 0, err
	}
	if size > len(b) {
		return nil, 0, ErrShortRecord
	}
	d := decoder{buf: b[:size]}
	tag, p, err := d.record()
	if err != nil {
		return nil, 0, err
	}
	switch tag {
	case tagHeader, tagTrailer:
		return nil, size, nil
	case tagNode:
		n, err := decodeNode(p)
		if err != nil {
			return nil, 0, fmt.Errorf("decode node record: %w: %w", err, ErrCorrupt)
		}
		return n, size, nil
	}
	return nil, 0, fmt.Errorf("decode record: unknown tag %q: %w", tag, ErrCorrupt)
}

// RecordNodeID reads, from the start of a record, the id of the node it
// holds ("" for a header or trailer) and the record's length, without
// needing the rest of the record: b must hold the record's first bytes up
// to the end of the id. It checks nothing else (no CRC).
func RecordNodeID(b []byte) (string, int, error) {
	size, err := RecordLen(b)
	if err != nil {
		return "", 0, err
	}
	if b[0] != tagNode {
		return "", size, nil
	}
	_, k := binary.Uvarint(b[1:])
	r := reader{p: b[1+k:]}
	r.uvarint() // version
	id := r.bytes()
	if r.err != nil {
		return "", 0, ErrShortRecord
	}
	return string(id), size, nil
}
