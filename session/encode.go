package session

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Graph is a session's persistent content at one instant: what a save
// records and a restore brings back. Presence (users online) is not part of
// it.
type Graph struct {
	Initialized bool
	Nodes       []*Node // sorted by ID, unique
	Gen         uint64  // change generation of the session it came from (not encoded)
	// JournalLSN is the last journaled change the graph holds (not encoded).
	JournalLSN uint64
}

// Encoding (format version 1). The stream is a sequence of records:
//
//	header  'H' "PITRGRAPH" version(1) flags(1: bit 0 initialized)
//	node    'N' uvarint version, str id, str type, str owner,
//	            uvarint ndeps, ndeps × str, bytes data      (one per node, by id)
//	trailer 'T' uvarint node count
//
// Each record is framed as tag(1) | uvarint len(payload) | payload |
// CRC-32C(tag|len|payload) big-endian, where str and bytes are
// uvarint length + bytes. Nothing in a node record depends on any other node
// or on time, so an unchanged node encodes to the same bytes save after save;
// the header only changes with the initialized flag and the trailer with the
// node count.
const (
	FormatVersion = 1
	graphMagic    = "PITRGRAPH"
	tagHeader     = 'H'
	tagNode       = 'N'
	tagTrailer    = 'T'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeRecords returns g's whole encoding and the same bytes split into
// records: the header, each node in id order, the trailer. The records are
// slices of the one encoding, so it costs a single copy of the graph.
func EncodeRecords(g *Graph) (encoding []byte, records [][]byte) {
	size := 64
	for _, n := range g.Nodes {
		size += nodeRecordSize(n)
	}
	buf := make([]byte, 0, size)
	records = make([][]byte, 0, len(g.Nodes)+2)
	add := func(start int) { records = append(records, buf[start:len(buf):len(buf)]) }
	var flags byte
	if g.Initialized {
		flags = 1
	}
	start := len(buf)
	buf = appendFrame(buf, tagHeader, func(p []byte) []byte { return append(append(p, graphMagic...), FormatVersion, flags) })
	add(start)
	for _, n := range g.Nodes {
		start = len(buf)
		buf = appendNode(buf, n)
		add(start)
	}
	start = len(buf)
	buf = appendFrame(buf, tagTrailer, func(p []byte) []byte { return binary.AppendUvarint(p, uint64(len(g.Nodes))) })
	add(start)
	return buf, records
}

// EncodeTo writes g's encoding to w, one record at a time, without
// holding the whole encoding in memory.
func EncodeTo(w io.Writer, g *Graph) error {
	if _, err := w.Write(EncodeHeader(g.Initialized)); err != nil {
		return err
	}
	var buf []byte
	for _, n := range g.Nodes {
		buf = appendNode(buf[:0], n)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	_, err := w.Write(EncodeTrailer(len(g.Nodes)))
	return err
}

// EncodeHeader returns the header record of a graph: EncodeRecords'
// first record.
func EncodeHeader(initialized bool) []byte {
	var flags byte
	if initialized {
		flags = 1
	}
	return appendFrame(nil, tagHeader, func(p []byte) []byte { return append(append(p, graphMagic...), FormatVersion, flags) })
}

// EncodeTrailer returns the trailer record of a graph of count nodes:
// EncodeRecords' last record.
func EncodeTrailer(count int) []byte {
	return appendFrame(nil, tagTrailer, func(p []byte) []byte { return binary.AppendUvarint(p, uint64(count)) })
}

// Encode returns g's whole encoding.
func Encode(g *Graph) []byte {
	enc, _ := EncodeRecords(g)
	return enc
}

// EncodeNode returns the framed record of one node.
func EncodeNode(n *Node) []byte { return appendNode(make([]byte, 0, nodeRecordSize(n)), n) }

// nodeRecordSize is an upper bound of a node record's size.
func nodeRecordSize(n *Node) int {
	size := 48 + len(n.ID) + len(n.Type) + len(n.Owner) + len(n.Data)
	for _, d := range n.Deps {
		size += len(d) + binary.MaxVarintLen64
	}
	return size
}

func appendNode(buf []byte, n *Node) []byte {
	return appendFrame(buf, tagNode, func(p []byte) []byte {
		p = binary.AppendUvarint(p, n.Version)
		p = appendBytes(p, []byte(n.ID))
		p = appendBytes(p, []byte(n.Type))
		p = appendBytes(p, []byte(n.Owner))
		p = binary.AppendUvarint(p, uint64(len(n.Deps)))
		for _, d := range n.Deps {
			p = appendBytes(p, []byte(d))
		}
		return appendBytes(p, n.Data)
	})
}

func appendBytes(p, b []byte) []byte {
	p = binary.AppendUvarint(p, uint64(len(b)))
	return append(p, b...)
}

// appendFrame appends one framed record to buf: the payload is written by
// payload straight into buf (no copy), then its length is put in front.
// The length prefix is a uvarint, so the payload is written after a
// maximal gap which is closed up afterwards.
func appendFrame(buf []byte, tag byte, payload func([]byte) []byte) []byte {
	start := len(buf)
	buf = append(buf, tag)
	gap := len(buf)
	buf = append(buf, make([]byte, binary.MaxVarintLen64)...)
	buf = payload(buf)
	plen := len(buf) - gap - binary.MaxVarintLen64
	var lb [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lb[:], uint64(plen))
	copy(buf[gap:], lb[:k])
	copy(buf[gap+k:], buf[gap+binary.MaxVarintLen64:])
	buf = buf[:gap+k+plen]
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf[start:], castagnoli))
}

func frame(tag byte, payload []byte) []byte {
	return appendFrame(nil, tag, func(p []byte) []byte { return append(p, payload...) })
}

// Decode parses a whole encoding. Truncated, corrupted or otherwise invalid
// input is an error wrapping ErrCorrupt that says where it went wrong.
func Decode(data []byte) (*Graph, error) {
	return decodeGraph(data, dataCopy)
}

// DecodeShared is Decode without copying the nodes' data: each node's Data
// is a slice of data (capped, so appending to it copies). The graph then
// costs no memory beyond data, which must not change while it is in use
// (nodes are never modified in place, so a session built from it keeps
// data alive and never writes to it).
func DecodeShared(data []byte) (*Graph, error) {
	return decodeGraph(data, dataAlias)
}

// How the decoder treats node data.
const (
	dataCopy  = iota // copied
	dataAlias        // a slice of the input
	dataSkip         // checked, not kept
)

// Check validates an encoded graph as Decode does and returns it without
// its nodes' data (the data is checked, not copied): for a reader that
// writes the encoding somewhere and needs the graph only to know it is
// sound (pitr restore), at no more memory than the encoding.
func Check(data []byte) (*Graph, error) {
	return decodeGraph(data, dataSkip)
}

func decodeGraph(data []byte, mode int) (*Graph, error) {
	d := decoder{buf: data}
	tag, p, err := d.record()
	if err != nil {
		return nil, err
	}
	if tag != tagHeader {
		return nil, d.errf("expected header record, found tag %q", tag)
	}
	if len(p) != len(graphMagic)+2 || string(p[:len(graphMagic)]) != graphMagic {
		return nil, d.errf("not a pitr graph (bad magic)")
	}
	if v := p[len(graphMagic)]; v != FormatVersion {
		return nil, d.errf("graph format version %d is not supported (this pitr reads version %d)", v, FormatVersion)
	}
	flags := p[len(graphMagic)+1]
	if flags&^1 != 0 {
		return nil, d.errf("unknown header flags %#x", flags)
	}
	g := &Graph{Initialized: flags&1 == 1, Nodes: []*Node{}}
	for {
		tag, p, err := d.record()
		if err != nil {
			return nil, err
		}
		switch tag {
		case tagNode:
			n, err := parseNode(p, mode)
			if err != nil {
				return nil, d.errf("node record %d: %v", len(g.Nodes), err)
			}
			if k := len(g.Nodes); k > 0 && g.Nodes[k-1].ID >= n.ID {
				return nil, d.errf("node %q out of order after %q", n.ID, g.Nodes[k-1].ID)
			}
			g.Nodes = append(g.Nodes, n)
		case tagTrailer:
			count, k := binary.Uvarint(p)
			if k <= 0 || k != len(p) {
				return nil, d.errf("bad trailer")
			}
			if count != uint64(len(g.Nodes)) {
				return nil, d.errf("trailer says %d nodes, found %d", count, len(g.Nodes))
			}
			if d.off != len(d.buf) {
				return nil, d.errf("%d bytes after the trailer", len(d.buf)-d.off)
			}
			return g, nil
		default:
			return nil, d.errf("unknown record tag %q", tag)
		}
	}
}

type decoder struct {
	buf []byte
	off int
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("decode graph at byte %d: %s: %w", d.off, fmt.Sprintf(format, args...), ErrCorrupt)
}

// record reads one framed record and checks its CRC.
func (d *decoder) record() (byte, []byte, error) {
	rest := d.buf[d.off:]
	if len(rest) == 0 {
		return 0, nil, d.errf("truncated: no trailer")
	}
	n, k := binary.Uvarint(rest[1:])
	if k <= 0 {
		return 0, nil, d.errf("truncated or bad record length")
	}
	head := 1 + k
	if n > uint64(len(rest)-head) || uint64(len(rest)-head)-n < 4 {
		return 0, nil, d.errf("truncated record (length %d)", n)
	}
	end := head + int(n)
	want := binary.BigEndian.Uint32(rest[end:])
	if got := crc32.Checksum(rest[:end], castagnoli); got != want {
		return 0, nil, d.errf("record checksum mismatch")
	}
	d.off += end + 4
	return rest[0], rest[head:end], nil
}

func decodeNode(p []byte) (*Node, error) { return parseNode(p, dataCopy) }

// parseNode decodes a node record's payload, its data as mode says.
func parseNode(p []byte, mode int) (*Node, error) {
	r := reader{p: p}
	n := &Node{Version: r.uvarint()}
	n.ID = string(r.bytes())
	n.Type = string(r.bytes())
	n.Owner = string(r.bytes())
	ndeps := r.uvarint()
	if ndeps > MaxDeps {
		return nil, fmt.Errorf("%d deps", ndeps)
	}
	n.Deps = make([]string, 0, ndeps)
	for i := uint64(0); i < ndeps && r.err == nil; i++ {
		n.Deps = append(n.Deps, string(r.bytes()))
	}
	switch data := r.bytes(); mode {
	case dataCopy:
		n.Data = append([]byte{}, data...)
	case dataAlias:
		n.Data = data[:len(data):len(data)]
		if n.Data == nil {
			n.Data = []byte{}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.p) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes at the end", len(r.p))
	}
	if n.Version == 0 {
		return nil, fmt.Errorf("version 0")
	}
	for _, err := range []error{ValidID(n.ID), validType(n.Type), validOwner(n.Owner), validDeps(n.Deps)} {
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

type reader struct {
	p   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.p)
	if k <= 0 {
		r.err = fmt.Errorf("truncated varint")
		return 0
	}
	r.p = r.p[k:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.p)) {
		r.err = fmt.Errorf("truncated field (length %d, %d left)", n, len(r.p))
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}
