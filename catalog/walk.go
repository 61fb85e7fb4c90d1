package catalog

import (
	"context"
	"fmt"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// Walk visits the chunk trees of the format 2 saves ms (others are
// skipped): fn is called once per save with its root, then once with
// every distinct tree node, whichever save reaches it first; a node seen
// before is not descended into again, as equal ids mean equal subtrees.
// Every node read is checked against its id and its level; every entry
// against the packs its save lists. Reads follow forward records through
// fw. This is how gc learns every chunk and node location the kept saves
// use, reading each node once however many saves share it.
func Walk(ctx context.Context, st store.Store, ms []*manifest.Manifest, fw *Forwards, root func(*manifest.Manifest, Ref) error, fn func(*manifest.Manifest, TreeNodeAt) error) error {
	seen := map[chunker.ID]bool{}
	cache := NodeCache{}
	for _, m := range ms {
		if m.Tree == nil {
			continue
		}
		r := Ref{ID: m.Tree.Root, Loc: m.Tree.RootLoc}
		if err := root(m, r); err != nil {
			return err
		}
		if err := walkSave(ctx, st, m, r, fw, seen, cache, fn); err != nil {
			return fmt.Errorf("save %s of session %s: chunk tree: %w", m.ID, m.Session, err)
		}
		clear(cache) // only the nodes of one save are needed at once
	}
	return nil
}

func walkSave(ctx context.Context, st store.Store, m *manifest.Manifest, r Ref, fw *Forwards, seen map[chunker.ID]bool, cache NodeCache, fn func(*manifest.Manifest, TreeNodeAt) error) error {
	o := readOpts{parallel: DefaultParallel, cache: newSpans(), sizes: m.Packs, window: TreeWindow, fwd: fw}
	var level []Ref
	if !seen[r.ID] {
		seen[r.ID] = true
		level = append(level, r)
	}
	for depth := m.Tree.Levels - 1; len(level) > 0; depth-- {
		nodes, err := readNodes(ctx, st, level, o, cache)
		if err != nil {
			return err
		}
		var next []Ref
		for i, n := range nodes {
			if n.Level != depth {
				return fmt.Errorf("node %s is at level %d, want %d: %w", level[i].ID, n.Level, depth, chunker.ErrCorrupt)
			}
			for _, e := range n.Entries {
				if err := e.Loc.Within(m.Packs[e.Loc.Pack]); err != nil {
					return fmt.Errorf("node %s: entry %s: %w (packs as the manifest lists them): %w", level[i].ID, e.ID, err, chunker.ErrCorrupt)
				}
				if depth > 0 && !seen[e.ID] {
					seen[e.ID] = true
					next = append(next, Ref{ID: e.ID, Loc: e.Loc})
				}
			}
			if err := fn(m, TreeNodeAt{Ref: level[i], TreeNode: n}); err != nil {
				return err
			}
		}
		level = next
	}
	return nil
}
