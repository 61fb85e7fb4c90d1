package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// Change is one node that differs between two saves: Old is nil for a
// node added, New nil for one removed.
type Change struct {
	ID       string
	Old, New *session.Node
}

// Diff lists the nodes that differ between saves a and b (format 2), by
// id. It reads only the tree nodes that differ between the two (a subtree
// whose node has the same id on both sides is the same and is skipped),
// then each node whose record starts in a differing leaf, from both saves.
func Diff(ctx context.Context, st store.Store, a, b *manifest.Manifest) ([]Change, error) {
	if a.Tree == nil || b.Tree == nil {
		return nil, fmt.Errorf("diff %s %s: %w", a.ID, b.ID, ErrNeedsTree)
	}
	nodes := NodeCache{}
	d := &differ{ctx: ctx, st: st, nodes: nodes, sp: newSpans()}
	ids, err := d.touched(a, b)
	if err != nil {
		return nil, fmt.Errorf("diff %s %s: %w", a.ID, b.ID, err)
	}
	var out []Change
	for _, id := range ids {
		old, err := d.node(a, id)
		if err != nil {
			return nil, fmt.Errorf("diff: save %s: node %s: %w", a.ID, id, err)
		}
		nw, err := d.node(b, id)
		if err != nil {
			return nil, fmt.Errorf("diff: save %s: node %s: %w", b.ID, id, err)
		}
		if !sameNode(old, nw) {
			out = append(out, Change{ID: id, Old: old, New: nw})
		}
	}
	return out, nil
}

func sameNode(a, b *session.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Version == b.Version && a.Type == b.Type && a.Owner == b.Owner &&
		slices.Equal(a.Deps, b.Deps) && bytes.Equal(a.Data, b.Data)
}

type differ struct {
	ctx   context.Context
	st    store.Store
	nodes NodeCache
	sp    *spans
}

// node reads node id of save m (nil when m does not have it).
func (d *differ) node(m *manifest.Manifest, id string) (*session.Node, error) {
	c := newCursor(d.ctx, d.st, m, d.nodes)
	c.o.cache = d.sp
	n, err := findNode(c, id)
	if errors.Is(err, ErrNoNode) {
		return nil, nil
	}
	return n, err
}

// side is one save's frontier in the walk: tree nodes not known to be in
// the other save, at one level.
type side struct {
	m      *manifest.Manifest
	level  int
	refs   []Ref
	chunks []manifest.Entry // data chunks of the leaves only this side has, keyed
}

// touched returns the ids of the nodes whose records start in a leaf that
// is not in both saves, sorted: every node that differs is among them.
func (d *differ) touched(a, b *manifest.Manifest) ([]string, error) {
	sa := side{m: a, level: a.Tree.Levels - 1, refs: []Ref{{ID: a.Tree.Root, Loc: a.Tree.RootLoc}}}
	sb := side{m: b, level: b.Tree.Levels - 1, refs: []Ref{{ID: b.Tree.Root, Loc: b.Tree.RootLoc}}}
	if a.Tree.Root == b.Tree.Root {
		return nil, nil
	}
	keys := map[string]bool{}
	for len(sa.refs) > 0 || len(sb.refs) > 0 {
		// Descend the deeper side first, so that both compare at one level.
		var err error
		switch {
		case sa.level > sb.level:
			err = d.down(&sa, keys)
		case sb.level > sa.level:
			err = d.down(&sb, keys)
		default:
			err = d.downBoth(&sa, &sb, keys)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, s := range []*side{&sa, &sb} {
		if err := d.recordIDs(s, keys); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// downBoth reads both frontiers and keeps, one level down, the children
// whose ids the other side does not have.
func (d *differ) downBoth(sa, sb *side, keys map[string]bool) error {
	na, err := d.read(sa)
	if err != nil {
		return err
	}
	nb, err := d.read(sb)
	if err != nil {
		return err
	}
	ida, idb := childIDs(na), childIDs(nb)
	if err := d.descend(sa, na, idb, keys); err != nil {
		return err
	}
	return d.descend(sb, nb, ida, keys)
}

// down reads one frontier and moves it a level down, keeping every child.
func (d *differ) down(s *side, keys map[string]bool) error {
	ns, err := d.read(s)
	if err != nil {
		return err
	}
	return d.descend(s, ns, nil, keys)
}

func (d *differ) read(s *side) ([]*manifest.TreeNode, error) {
	if err := checkRefs(s.m, s.refs); err != nil {
		return nil, fmt.Errorf("save %s: chunk tree: %w", s.m.ID, err)
	}
	o := readOpts{parallel: DefaultParallel, cache: d.sp, sizes: s.m.Packs, window: TreeWindow}
	ns, err := readNodes(d.ctx, d.st, s.refs, o, d.nodes)
	if err != nil {
		return nil, fmt.Errorf("save %s: chunk tree: %w", s.m.ID, err)
	}
	for i, n := range ns {
		if n.Level != s.level {
			return nil, fmt.Errorf("save %s: chunk tree: node %s is at level %d, want %d: %w", s.m.ID, s.refs[i].ID, n.Level, s.level, chunker.ErrCorrupt)
		}
	}
	return ns, nil
}

func childIDs(ns []*manifest.TreeNode) map[chunker.ID]bool {
	ids := map[chunker.ID]bool{}
	for _, n := range ns {
		for _, e := range n.Entries {
			ids[e.ID] = true
		}
	}
	return ids
}

// descend moves s below ns: at the leaves it keeps the data chunks the
// other side does not have (a chunk that continues a record is replaced by
// the id of that record); above, it keeps the children the other side does
// not have (other nil: all).
func (d *differ) descend(s *side, ns []*manifest.TreeNode, other map[chunker.ID]bool, keys map[string]bool) error {
	var next []Ref
	for _, n := range ns {
		for i, e := range n.Entries {
			if other != nil && other[e.ID] {
				continue
			}
			if s.level > 0 {
				next = append(next, Ref{ID: e.ID, Loc: e.Loc})
				continue
			}
			if e.Key != "" {
				s.chunks = append(s.chunks, e.Entry)
			} else if err := d.keyOf(s.m, n, i, keys); err != nil {
				return err
			}
		}
	}
	s.refs, s.level = next, s.level-1
	return nil
}

// keyOf records the node whose record holds leaf entry i of n: its own key,
// or that of the last keyed entry before it; an entry with none before it
// in its leaf continues a record of an earlier leaf, found by reading the
// whole chunk list (rare: a changed piece of a large node at the start of
// a leaf).
func (d *differ) keyOf(m *manifest.Manifest, n *manifest.TreeNode, i int, keys map[string]bool) error {
	for j := i; j >= 0; j-- {
		if k := n.Entries[j].Key; k != "" {
			keys[k] = true
			return nil
		}
	}
	entries, err := d.nodes.entries(d.ctx, d.st, m, nil, d.sp)
	if err != nil {
		return err
	}
	last := ""
	for _, e := range entries {
		if e.Key != "" {
			last = e.Key
		}
		if e.ID == n.Entries[i].ID {
			if last != "" {
				keys[last] = true
			}
			return nil
		}
	}
	return nil
}

// recordIDs reads the chunks s kept and records the id of every node
// whose record starts in one.
func (d *differ) recordIDs(s *side, keys map[string]bool) error {
	refs, err := refsOf(s.m, s.chunks)
	if err != nil {
		return fmt.Errorf("save %s: %w", s.m.ID, err)
	}
	var (
		mu  sync.Mutex
		ids []string
	)
	o := readOpts{parallel: DefaultParallel, cache: d.sp, sizes: s.m.Packs}
	err = readRefs(d.ctx, d.st, refs, o, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		for off := s.chunks[i].Start; off < int64(len(raw)); {
			id, size, err := session.RecordNodeID(raw[off:])
			if err != nil {
				return fmt.Errorf("chunk %s: %w", s.chunks[i].ID, err)
			}
			if id != "" {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
			off += int64(size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save %s: %w", s.m.ID, err)
	}
	for _, id := range ids {
		keys[id] = true
	}
	return nil
}
