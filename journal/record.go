package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"github.com/pitr-dev/pitr/session"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds a record's length: a node of the largest size the
// server accepts is far below it.
const maxRecord = 1 << 31

// ErrTorn is wrapped by the warning Replay returns for a dropped tail.
var ErrTorn = errors.New("torn or corrupt journal tail")

// decodeRecords decodes the records of one segment, in order, calling fn
// for each. At the first record that is incomplete or fails its checksum
// or decoding, it stops and returns an error wrapping ErrTorn saying where.
func decodeRecords(b []byte, fn func(lsn uint64, op session.Op) error) error {
	off := 0
	for off < len(b) {
		n, k := binary.Uvarint(b[off:])
		if k <= 0 || n > maxRecord || uint64(len(b)-off-k) < 4+n {
			return fmt.Errorf("%w at byte %d: incomplete record", ErrTorn, off)
		}
		body := b[off+k+4 : off+k+4+int(n)]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[off+k:]) {
			return fmt.Errorf("%w at byte %d: checksum mismatch", ErrTorn, off)
		}
		lsn, lk := binary.Uvarint(body)
		if lk <= 0 || lsn == 0 {
			return fmt.Errorf("%w at byte %d: bad sequence number", ErrTorn, off)
		}
		op, err := session.DecodeOp(body[lk:])
		if err != nil {
			return fmt.Errorf("%w at byte %d: %w", ErrTorn, off, err)
		}
		if err := fn(lsn, op); err != nil {
			return err
		}
		off += k + 4 + int(n)
	}
	return nil
}

// Replay calls apply for every change in dataDir's journal with an lsn
// after `after`, in order, and returns the last lsn seen (after, when there
// is none). A torn or corrupt record ends the replay there: the records
// from it on are not applied, and torn describes what was dropped (the
// caller logs it); it is not an error. Records out of order also end it.
func Replay(dataDir string, after uint64, apply func(session.Op) error) (last uint64, torn error, err error) {
	segs, err := segments(dataDir + string(os.PathSeparator) + Dir)
	if err != nil {
		return after, nil, err
	}
	last = after
	prev := uint64(0)
	for _, s := range segs {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return last, nil, fmt.Errorf("read journal: %w", err)
		}
		derr := decodeRecords(b, func(lsn uint64, op session.Op) error {
			if lsn <= prev {
				return fmt.Errorf("%w: sequence number %d after %d", ErrTorn, lsn, prev)
			}
			prev = lsn
			if lsn <= after {
				return nil
			}
			if err := apply(op); err != nil {
				return err
			}
			last = lsn
			return nil
		})
		if errors.Is(derr, ErrTorn) {
			return last, fmt.Errorf("journal segment %s: %w (the records from there on were dropped)", s.path, derr), nil
		}
		if derr != nil {
			return last, nil, derr
		}
	}
	return last, nil, nil
}
