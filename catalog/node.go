package catalog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// ErrNoNode: the save has no node with the id asked.
var ErrNoNode = errors.New("no such node in the save")

// ErrNeedsTree: the save predates chunk trees (format 1): looking up one
// node would mean reading the whole save.
var ErrNeedsTree = errors.New("the save has no chunk tree (written by an older pitr)")

// cursor walks a save's data chunks in graph order from a position found
// by key, reading the tree nodes on its path, one per level.
type cursor struct {
	ctx   context.Context
	st    store.Store
	m     *manifest.Manifest
	o     readOpts
	nodes NodeCache
	stack []frame // root first; the last is a leaf
}

type frame struct {
	n *manifest.TreeNode
	i int
}

func newCursor(ctx context.Context, st store.Store, m *manifest.Manifest, nodes NodeCache) *cursor {
	return &cursor{ctx: ctx, st: st, m: m, nodes: nodes,
		o: readOpts{parallel: DefaultParallel, cache: newSpans(), sizes: m.Packs, window: TreeWindow}}
}

// node reads one tree node, checking its level.
func (c *cursor) node(r Ref, level int) (*manifest.TreeNode, error) {
	if err := checkRefs(c.m, []Ref{r}); err != nil {
		return nil, fmt.Errorf("chunk tree: %w", err)
	}
	ns, err := readNodes(c.ctx, c.st, []Ref{r}, c.o, c.nodes)
	if err != nil {
		return nil, fmt.Errorf("chunk tree: %w", err)
	}
	if ns[0].Level != level {
		return nil, fmt.Errorf("chunk tree: node %s is at level %d, want %d: %w", r.ID, ns[0].Level, level, chunker.ErrCorrupt)
	}
	return ns[0], nil
}

// seek descends to the chunk where the record of node key starts, if the
// save has it: at each level the last entry whose key is at or before key.
func (c *cursor) seek(key string) error {
	r := Ref{ID: c.m.Tree.Root, Loc: c.m.Tree.RootLoc}
	for level := c.m.Tree.Levels - 1; level >= 0; level-- {
		n, err := c.node(r, level)
		if err != nil {
			return err
		}
		i := n.SearchKey(key)
		if i < 0 {
			return ErrNoNode
		}
		c.stack = append(c.stack, frame{n, i})
		e := n.Entries[i]
		r = Ref{ID: e.ID, Loc: e.Loc}
	}
	return nil
}

// entry is the leaf entry the cursor is at.
func (c *cursor) entry() manifest.Entry {
	f := c.stack[len(c.stack)-1]
	return f.n.Entries[f.i].Entry
}

// next moves to the following data chunk; false at the end of the save.
func (c *cursor) next() (bool, error) {
	k := len(c.stack) - 1
	for k >= 0 && c.stack[k].i+1 >= len(c.stack[k].n.Entries) {
		k--
	}
	if k < 0 {
		return false, nil
	}
	c.stack[k].i++
	for k < len(c.stack)-1 {
		e := c.stack[k].n.Entries[c.stack[k].i]
		n, err := c.node(Ref{ID: e.ID, Loc: e.Loc}, len(c.stack)-2-k)
		if err != nil {
			return false, err
		}
		k++
		c.stack[k] = frame{n, 0}
	}
	return true, nil
}

// read reads the data chunks es, in one batch of merged ranges, and
// returns their bytes concatenated.
func (c *cursor) read(es []manifest.Entry) ([]byte, error) {
	refs, err := refsOf(c.m, es)
	if err != nil {
		return nil, err
	}
	raws := make([][]byte, len(es))
	err = readRefs(c.ctx, c.st, refs, readOpts{parallel: DefaultParallel, cache: c.o.cache, sizes: c.m.Packs}, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		if int64(len(raw)) != es[i].Size {
			return &ChunkError{Ref: refs[i], Err: fmt.Errorf("%w: %d bytes, the tree says %d", chunker.ErrCorrupt, len(raw), es[i].Size)}
		}
		raws[i] = append([]byte(nil), raw...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []byte
	for i, e := range es {
		if raws[i] == nil { // a repeated chunk: read once
			for j := range i {
				if es[j].ID == e.ID {
					raws[i] = raws[j]
					break
				}
			}
		}
		out = append(out, raws[i]...)
	}
	return out, nil
}

// Node reads node id of save m, and nothing else: the tree nodes on the
// path to the chunk where its record starts (one per level), and the
// chunks that hold the record. A save without the node is ErrNoNode.
func Node(ctx context.Context, st store.Store, m *manifest.Manifest, id string) (*session.Node, error) {
	return NodeCache{}.Node(ctx, st, m, id)
}

// Node is the package's Node, reading tree nodes not in c.
func (c NodeCache) Node(ctx context.Context, st store.Store, m *manifest.Manifest, id string) (*session.Node, error) {
	if m.Tree == nil {
		return nil, fmt.Errorf("save %s: %w", m.ID, ErrNeedsTree)
	}
	n, err := findNode(newCursor(ctx, st, m, c), id)
	if err != nil {
		return nil, fmt.Errorf("save %s: node %s: %w", m.ID, id, err)
	}
	return n, nil
}

func findNode(c *cursor, id string) (*session.Node, error) {
	if err := c.seek(id); err != nil {
		return nil, err
	}
	first := c.entry()
	buf, err := c.read([]manifest.Entry{first})
	if err != nil {
		return nil, err
	}
	buf = buf[first.Start:]
	for {
		n, size, err := session.DecodeRecord(buf)
		if errors.Is(err, session.ErrShortRecord) {
			if buf, err = c.more(buf); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case err != nil:
			return nil, err
		case n == nil: // the trailer: past every node
			return nil, ErrNoNode
		case n.ID == id:
			return n, nil
		case n.ID > id:
			return nil, ErrNoNode
		}
		buf = buf[size:]
	}
}

// more appends to buf the chunks that follow, as many as the record at its
// start still needs (or one, when its length is not known yet).
func (c *cursor) more(buf []byte) ([]byte, error) {
	need := int64(1)
	if size, err := session.RecordLen(buf); err == nil {
		need = int64(size - len(buf))
	}
	var es []manifest.Entry
	for got := int64(0); got < need; {
		ok, err := c.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("the save ends inside a record: %w", chunker.ErrCorrupt)
		}
		e := c.entry()
		es = append(es, e)
		got += e.Size
	}
	b, err := c.read(es)
	if err != nil {
		return nil, err
	}
	return append(buf, b...), nil
}

// History reads single nodes of a session's past saves: the server's
// POST /v1/nodes/{id}/revert. It is safe for concurrent use.
type History struct {
	Store   store.Store
	Session string
}

// NodeAt returns node id as of save saveID or, when saveID is "", of the
// newest committed save at or before at (latest: the newest save). The
// node is nil when that save did not have it.
func (h History) NodeAt(ctx context.Context, id string, at time.Time, latest bool, saveID string) (*session.Node, *manifest.Manifest, error) {
	var m *manifest.Manifest
	var err error
	switch {
	case saveID != "":
		m, err = LoadCommitted(ctx, h.Store, h.Session, saveID)
	case latest:
		m, err = Newest(ctx, h.Store, h.Session)
	default:
		m, err = At(ctx, h.Store, h.Session, at)
	}
	if err != nil {
		return nil, nil, err
	}
	n, err := Node(ctx, h.Store, m, id)
	if errors.Is(err, ErrNoNode) {
		return nil, m, nil
	}
	return n, m, err
}
