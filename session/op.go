package session

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// OpKind names a change to the graph, as the journal records it.
type OpKind byte

// The kinds of Op.
const (
	OpPut    OpKind = 'P' // Node is the node as stored
	OpDelete OpKind = 'D' // ID removed; Deps: the nodes that lost it from their deps, with new versions
	OpOwner  OpKind = 'O' // node ID now owned by Owner, at Version
	OpInit   OpKind = 'I' // the session became active
)

// Op is one change to the graph as it was applied: its result, not the
// request, so that applying it again (Apply) gives the same graph, versions
// included, and applying it twice changes nothing.
type Op struct {
	Kind    OpKind
	Node    *Node
	ID      string
	Owner   string
	Version uint64
	Deps    []DepUpdate
}

// DepUpdate is a node whose deps lost a deleted id, and its new version.
type DepUpdate struct {
	ID      string
	Version uint64
}

// Journal makes changes durable before they are acknowledged. Append is
// called with the session's lock held, in the order of the changes, and
// returns the change's log sequence number; Wait blocks until every change
// up to lsn is on disk (concurrent callers share one write and fsync).
//
// Err reports a failure of the journal's disk: the session then refuses
// every edit, since none could be made durable.
type Journal interface {
	Append(op Op) uint64
	Wait(ctx context.Context, lsn uint64) error
	Err() error
}

// ErrNotDurable: a change was applied but could not be made durable on
// local disk (the journal failed); it is not acknowledged.
var ErrNotDurable = errors.New("not durable on local disk")

// SetJournal makes every later change go through j (see Journal); last is
// the last lsn the session's graph already holds. Call it before serving.
func (s *Session) SetJournal(j Journal, last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal, s.lsn = j, last
}

// logLocked appends ops to the journal, if any, and returns the last lsn.
func (s *Session) logLocked(ops ...Op) uint64 {
	if s.journal == nil {
		return 0
	}
	var lsn uint64
	for _, op := range ops {
		lsn = s.journal.Append(op)
	}
	s.lsn = lsn
	return lsn
}

// editableLocked says why the session refuses edits: fenced, or a journal
// that can no longer write.
func (s *Session) editableLocked() error {
	if err := s.fencedLocked(); err != nil {
		return err
	}
	if s.journal != nil {
		if err := s.journal.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
	}
	return nil
}

// settle waits until the state an edit's answer reports is durable: the
// change it journaled (lsn), or, for an edit that changed nothing or
// failed, every change journaled before it (a no-op or a 404 may only be
// answered once what it saw is on disk). An edit's own error wins.
func (s *Session) settle(lsn uint64, err error) error {
	if lsn == 0 {
		s.mu.Lock()
		lsn = s.lsn
		s.mu.Unlock()
	}
	if derr := s.durable(lsn); derr != nil && err == nil {
		return derr
	}
	return err
}

// durable waits until the change with lsn is on disk.
func (s *Session) durable(lsn uint64) error {
	if lsn == 0 {
		return nil
	}
	s.mu.Lock()
	j := s.journal
	s.mu.Unlock()
	if err := j.Wait(context.Background(), lsn); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// Apply applies op (from a journal) without checks, journaling or events:
// it replays changes at start-up, before the session serves.
func (s *Session) Apply(op Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op.Kind {
	case OpPut:
		if op.Node == nil {
			return fmt.Errorf("apply put: no node: %w", ErrCorrupt)
		}
		s.setNode(op.Node.ID, op.Node)
	case OpDelete:
		s.deleteNode(op.ID)
		for _, u := range op.Deps {
			if old, ok := s.nodes[u.ID]; ok {
				n := *old
				n.Deps = slices.DeleteFunc(slices.Clone(old.Deps), func(d string) bool { return d == op.ID })
				n.Version = u.Version
				s.setNode(u.ID, &n)
			}
		}
	case OpOwner:
		if old, ok := s.nodes[op.ID]; ok {
			n := *old
			n.Owner, n.Version = op.Owner, op.Version
			s.setNode(op.ID, &n)
		}
	case OpInit:
		s.state = StateActive
	default:
		return fmt.Errorf("apply: unknown op %q: %w", op.Kind, ErrCorrupt)
	}
	s.changedLocked()
	return nil
}

// EncodeOp encodes op for the journal.
func EncodeOp(op Op) []byte {
	p := []byte{byte(op.Kind)}
	switch op.Kind {
	case OpPut:
		p = append(p, EncodeNode(op.Node)...)
	case OpDelete:
		p = appendBytes(p, []byte(op.ID))
		p = binary.AppendUvarint(p, uint64(len(op.Deps)))
		for _, u := range op.Deps {
			p = appendBytes(p, []byte(u.ID))
			p = binary.AppendUvarint(p, u.Version)
		}
	case OpOwner:
		p = appendBytes(p, []byte(op.ID))
		p = appendBytes(p, []byte(op.Owner))
		p = binary.AppendUvarint(p, op.Version)
	}
	return p
}

// OpParts returns EncodeOp(op) in pieces whose concatenation is that
// encoding; a put's node data is one of the pieces, shared, not copied, so
// that journaling a large node does not copy it.
func OpParts(op Op) [][]byte {
	if op.Kind != OpPut || op.Node == nil {
		return [][]byte{EncodeOp(op)}
	}
	n := op.Node
	p := binary.AppendUvarint(nil, n.Version)
	p = appendBytes(p, []byte(n.ID))
	p = appendBytes(p, []byte(n.Type))
	p = appendBytes(p, []byte(n.Owner))
	p = binary.AppendUvarint(p, uint64(len(n.Deps)))
	for _, d := range n.Deps {
		p = appendBytes(p, []byte(d))
	}
	p = binary.AppendUvarint(p, uint64(len(n.Data)))
	head := []byte{byte(OpPut), tagNode}
	head = binary.AppendUvarint(head, uint64(len(p)+len(n.Data)))
	head = append(head, p...)
	crc := crc32.Update(crc32.Checksum(head[1:], castagnoli), castagnoli, n.Data)
	return [][]byte{head, n.Data, binary.BigEndian.AppendUint32(nil, crc)}
}

// DecodeOp decodes an op EncodeOp wrote. Anything else is an error wrapping
// ErrCorrupt.
func DecodeOp(b []byte) (Op, error) {
	bad := func(format string, args ...any) (Op, error) {
		return Op{}, fmt.Errorf("decode journal op: %s: %w", fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if len(b) == 0 {
		return bad("empty")
	}
	op := Op{Kind: OpKind(b[0])}
	r := reader{p: b[1:]}
	switch op.Kind {
	case OpPut:
		d := decoder{buf: b[1:]}
		tag, p, err := d.record()
		if err != nil || tag != tagNode || d.off != len(d.buf) {
			return bad("bad node record")
		}
		if op.Node, err = decodeNode(p); err != nil {
			return bad("node: %v", err)
		}
		return op, nil
	case OpDelete:
		op.ID = string(r.bytes())
		n := r.uvarint()
		if n > uint64(len(r.p)) {
			return bad("%d dep updates", n)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			op.Deps = append(op.Deps, DepUpdate{ID: string(r.bytes()), Version: r.uvarint()})
		}
	case OpOwner:
		op.ID = string(r.bytes())
		op.Owner = string(r.bytes())
		op.Version = r.uvarint()
		if r.err == nil {
			if err := validOwner(op.Owner); err != nil {
				return bad("%v", err)
			}
		}
	case OpInit:
	default:
		return bad("unknown kind %q", b[0])
	}
	if r.err != nil {
		return bad("%v", r.err)
	}
	if len(r.p) != 0 {
		return bad("%d bytes left over", len(r.p))
	}
	if op.Kind == OpDelete || op.Kind == OpOwner {
		if err := ValidID(op.ID); err != nil {
			return bad("%v", err)
		}
	}
	return op, nil
}
