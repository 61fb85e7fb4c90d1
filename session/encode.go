package session

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Graph is a session's persistent content at one instant: what a save
// records and a restore brings back. Presence (users online) is not part of
// it.
type Graph struct {
	Initialized bool
	Nodes       []*Node // sorted by ID, unique
	Gen         uint64  // change generation of the session it came from (not encoded)
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

// EncodeRecords returns g's encoding as one record per element: the header,
// each node in id order, the trailer. Their concatenation is Encode(g).
func EncodeRecords(g *Graph) [][]byte {
	recs := make([][]byte, 0, len(g.Nodes)+2)
	var flags byte
	if g.Initialized {
		flags = 1
	}
	recs = append(recs, frame(tagHeader, append([]byte(graphMagic), FormatVersion, flags)))
	for _, n := range g.Nodes {
		recs = append(recs, EncodeNode(n))
	}
	recs = append(recs, frame(tagTrailer, binary.AppendUvarint(nil, uint64(len(g.Nodes)))))
	return recs
}

// Encode returns g's whole encoding.
func Encode(g *Graph) []byte {
	recs := EncodeRecords(g)
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	out := make([]byte, 0, size)
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

// EncodeNode returns the framed record of one node.
func EncodeNode(n *Node) []byte {
	size := 32 + len(n.ID) + len(n.Type) + len(n.Owner) + len(n.Data)
	for _, d := range n.Deps {
		size += len(d) + 2
	}
	p := make([]byte, 0, size)
	p = binary.AppendUvarint(p, n.Version)
	p = appendBytes(p, []byte(n.ID))
	p = appendBytes(p, []byte(n.Type))
	p = appendBytes(p, []byte(n.Owner))
	p = binary.AppendUvarint(p, uint64(len(n.Deps)))
	for _, d := range n.Deps {
		p = appendBytes(p, []byte(d))
	}
	p = appendBytes(p, n.Data)
	return frame(tagNode, p)
}

func appendBytes(p, b []byte) []byte {
	p = binary.AppendUvarint(p, uint64(len(b)))
	return append(p, b...)
}

func frame(tag byte, payload []byte) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(payload)+4)
	out = append(out, tag)
	out = binary.AppendUvarint(out, uint64(len(payload)))
	out = append(out, payload...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// Decode parses a whole encoding. Truncated, corrupted or otherwise invalid
// input is an error wrapping ErrCorrupt that says where it went wrong.
func Decode(data []byte) (*Graph, error) {
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
			n, err := decodeNode(p)
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

func decodeNode(p []byte) (*Node, error) {
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
	n.Data = append([]byte{}, r.bytes()...)
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
