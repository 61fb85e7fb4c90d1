package catalog

import (
	"context"
	"fmt"
	"sync"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// MaxReadsInFlight bounds the reads of a save's data at once: each may be
// MaxRead bytes, and their bodies come on top of the graph being filled.
const MaxReadsInFlight = 8

// MaxGraphBytes bounds the graph a save may claim, so a corrupt manifest
// or tree cannot make a reader allocate without limit.
const MaxGraphBytes = 64 << 30

// TreeNodeAt is a tree node as a walk visits it: its id, where it is stored and
// its decoded content.
type TreeNodeAt struct {
	Ref
	*manifest.TreeNode
}

// Entries returns the data chunks of save m in graph order, with their
// locations: for format 2 by walking its chunk tree level by level (one
// round of reads per level), for format 1 by reading its chunk list. The
// count is checked against the manifest; every node read is checked
// against its id. visit, if not nil, is called with every tree node.
func Entries(ctx context.Context, st store.Store, m *manifest.Manifest, visit func(TreeNodeAt)) ([]manifest.Entry, error) {
	return NodeCache{}.entries(ctx, st, m, visit, newSpans())
}

// NodeCache keeps the tree nodes read by Entries, for a caller that reads
// many saves of a session, which share most of their nodes: each node is
// read once. It is not safe for concurrent use.
type NodeCache map[chunker.ID]*manifest.TreeNode

// Entries is the package's Entries, reading nodes not in c and adding
// them to it.
func (c NodeCache) Entries(ctx context.Context, st store.Store, m *manifest.Manifest, visit func(TreeNodeAt)) ([]manifest.Entry, error) {
	return c.entries(ctx, st, m, visit, newSpans())
}

// EntriesWith is Entries with the forward records read so far (and to be
// read) in fw, for a caller that reads many saves: each record is read,
// and the records listed, once.
func (c NodeCache) EntriesWith(ctx context.Context, st store.Store, m *manifest.Manifest, visit func(TreeNodeAt), fw *Forwards) ([]manifest.Entry, error) {
	sp := newSpans()
	sp.fwd = fw
	return c.entries(ctx, st, m, visit, sp)
}

func (c NodeCache) entries(ctx context.Context, st store.Store, m *manifest.Manifest, visit func(TreeNodeAt), sp *spans) ([]manifest.Entry, error) {
	var out []manifest.Entry
	var err error
	if m.Tree == nil {
		out, err = listEntries(ctx, st, m)
	} else {
		out, err = treeEntries(ctx, st, m, visit, c, sp)
	}
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", m.ID, err)
	}
	if int64(len(out)) != m.Chunks() {
		return nil, fmt.Errorf("save %s: %d chunks listed, the manifest says %d: %w", m.ID, len(out), m.Chunks(), chunker.ErrCorrupt)
	}
	return out, nil
}

func treeEntries(ctx context.Context, st store.Store, m *manifest.Manifest, visit func(TreeNodeAt), cache NodeCache, sp *spans) ([]manifest.Entry, error) {
	o := readOpts{parallel: DefaultParallel, cache: sp, sizes: m.Packs, window: TreeWindow}
	level := []Ref{{ID: m.Tree.Root, Loc: m.Tree.RootLoc}}
	var sizes []int64 // raw bytes under each ref of level, as its parent says (-1: root)
	sizes = append(sizes, -1)
	for depth := m.Tree.Levels - 1; ; depth-- {
		nodes, err := readNodes(ctx, st, level, o, cache)
		if err != nil {
			return nil, fmt.Errorf("chunk tree: %w", err)
		}
		var next []Ref
		var nextSizes []int64
		var leaves []manifest.Entry
		for i, n := range nodes {
			if n.Level != depth {
				return nil, fmt.Errorf("chunk tree: node %s is at level %d, want %d: %w", level[i].ID, n.Level, depth, chunker.ErrCorrupt)
			}
			if visit != nil {
				visit(TreeNodeAt{Ref: level[i], TreeNode: n})
			}
			var sum int64
			for _, e := range n.Entries {
				if err := e.Loc.Within(m.Packs[e.Loc.Pack]); err != nil {
					return nil, fmt.Errorf("chunk tree: node %s: entry %s: %w (packs as the manifest lists them): %w", level[i].ID, e.ID, err, chunker.ErrCorrupt)
				}
				sum += e.Size
				if depth == 0 {
					leaves = append(leaves, e.Entry)
				} else {
					next = append(next, Ref{ID: e.ID, Loc: e.Loc})
					nextSizes = append(nextSizes, e.Size)
				}
			}
			if sizes[i] >= 0 && sum != sizes[i] {
				return nil, fmt.Errorf("chunk tree: node %s holds %d bytes, its parent says %d: %w", level[i].ID, sum, sizes[i], chunker.ErrCorrupt)
			}
			if int64(len(next)+len(leaves)) > m.Tree.Chunks {
				return nil, fmt.Errorf("chunk tree: more entries than the save's %d chunks: %w", m.Tree.Chunks, chunker.ErrCorrupt)
			}
		}
		if depth == 0 {
			return leaves, nil
		}
		level, sizes = next, nextSizes
	}
}

func listEntries(ctx context.Context, st store.Store, m *manifest.Manifest) ([]manifest.Entry, error) {
	refs := make([]Ref, len(m.ChunkList.Chunks))
	for i, c := range m.ChunkList.Chunks {
		refs[i] = Ref{ID: c.ID}
	}
	lists := make([][]manifest.Entry, len(refs))
	var mu sync.Mutex
	err := ReadChunks(ctx, st, refs, DefaultParallel, func(i int, raw []byte) error {
		es, err := manifest.DecodeList(raw)
		if err != nil {
			return &ChunkError{Ref: refs[i], Err: err}
		}
		mu.Lock()
		lists[i] = es
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chunk list: %w", err)
	}
	first := map[chunker.ID][]manifest.Entry{}
	for i, l := range lists {
		if l != nil {
			first[refs[i].ID] = l
		}
	}
	var out []manifest.Entry
	for _, r := range refs {
		out = append(out, first[r.ID]...)
	}
	return out, nil
}

// checkRefs checks that every ref lies inside its pack, as save m lists
// the packs' sizes: a tree that points elsewhere is corrupt.
func checkRefs(m *manifest.Manifest, refs []Ref) error {
	for _, r := range refs {
		if err := r.Loc.Within(m.Packs[r.Loc.Pack]); err != nil {
			return fmt.Errorf("chunk %s: %w: %w", r.ID, err, chunker.ErrCorrupt)
		}
	}
	return nil
}

// refsOf returns the refs to read entries of save m, checked.
func refsOf(m *manifest.Manifest, es []manifest.Entry) ([]Ref, error) {
	refs := make([]Ref, len(es))
	for i, e := range es {
		refs[i] = Ref{ID: e.ID, Loc: e.Loc}
	}
	return refs, checkRefs(m, refs)
}

// Layout places a save's chunks in its graph: the offset of each entry,
// the graph's size, and the refs to read (each distinct chunk once).
type Layout struct {
	Entries []manifest.Entry
	Offsets []int64 // Offsets[i] is where Entries[i] starts in the graph
	Total   int64
}

// NewLayout checks entries' sizes against the manifest and lays them out.
func NewLayout(m *manifest.Manifest, entries []manifest.Entry) (*Layout, error) {
	l := &Layout{Entries: entries, Offsets: make([]int64, len(entries))}
	for i, e := range entries {
		if e.Size < 1 || l.Total+e.Size > MaxGraphBytes {
			return nil, fmt.Errorf("save %s: chunk %s: implausible size %d: %w", m.ID, e.ID, e.Size, chunker.ErrCorrupt)
		}
		l.Offsets[i] = l.Total
		l.Total += e.Size
	}
	if l.Total != m.BytesTotal {
		return nil, fmt.Errorf("save %s: chunks add up to %d bytes, the manifest says %d: %w", m.ID, l.Total, m.BytesTotal, chunker.ErrCorrupt)
	}
	if m.Tree != nil {
		if got := manifest.ContentSHA256(entries); got != m.ContentSHA256 {
			return nil, fmt.Errorf("save %s: chunk list hashes to %s, the manifest says %s: %w", m.ID, got, m.ContentSHA256, chunker.ErrCorrupt)
		}
	}
	return l, nil
}

// Refs returns the refs to read for every entry of the layout.
func (l *Layout) Refs() []Ref {
	refs := make([]Ref, len(l.Entries))
	for i, e := range l.Entries {
		refs[i] = Ref{ID: e.ID, Loc: e.Loc}
	}
	return refs
}

// Progress is told the bytes of the graph filled so far, and the total.
type Progress func(done, total int64)

// Graph reads save m's whole encoded graph: its entries, then every
// distinct chunk once, copied to each place it appears. A save of at most
// WholeSave bytes of packs is read one GET per pack, all at once. The result is
// checked: every chunk against its id, the chunk list against the
// manifest (format 2: ContentSHA256, which with the chunk ids covers every
// byte; format 1: the whole graph's SHA-256).
func Graph(ctx context.Context, st store.Store, m *manifest.Manifest, parallel int, progress Progress) ([]byte, []manifest.Entry, error) {
	return GraphWith(ctx, st, m, GraphOptions{Parallel: parallel, Progress: progress})
}

// GraphOptions tune GraphWith.
type GraphOptions struct {
	Parallel int      // reads at once (at most MaxReadsInFlight, the default)
	Progress Progress // told the bytes filled so far, if set
	// Older says the save may not be its session's newest, so gc may
	// have repacked packs it names: the forward records are listed (one
	// LIST a thousand records) before its packs are read, and a repacked
	// pack costs its record's GET, not a GET that fails first. gc anchors
	// the newest save's packs (only a rollback's newest save may name
	// packs repacked before it, each found gone by its read).
	Older bool
}

// GraphWith is Graph with options.
func GraphWith(ctx context.Context, st store.Store, m *manifest.Manifest, o GraphOptions) ([]byte, []manifest.Entry, error) {
	parallel, progress := o.Parallel, o.Progress
	if parallel <= 0 || parallel > MaxReadsInFlight {
		parallel = MaxReadsInFlight
	}
	sp := newSpans()
	if o.Older && m.Tree != nil {
		sp.fwd.ListGone(ctx, st)
	}
	prefetch(ctx, st, m, parallel, sp)
	entries, err := NodeCache{}.entries(ctx, st, m, nil, sp)
	if err != nil {
		return nil, nil, err
	}
	l, err := NewLayout(m, entries)
	if err != nil {
		return nil, nil, err
	}
	graph := make([]byte, l.Total)
	at := map[chunker.ID][]int64{}
	for i, e := range entries {
		at[e.ID] = append(at[e.ID], l.Offsets[i])
	}
	var mu sync.Mutex
	var done int64
	// Each chunk is decompressed straight into its first place in the
	// graph, then copied to the others.
	into := func(i int) []byte {
		end := l.Offsets[i] + entries[i].Size
		return graph[l.Offsets[i]:end:end] // a decoder cannot write past it
	}
	err = readRefs(ctx, st, l.Refs(), readOpts{parallel: parallel, cache: sp, sizes: m.Packs, into: into}, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		e := entries[i]
		if int64(len(raw)) != e.Size {
			return &ChunkError{Ref: Ref{ID: e.ID, Loc: e.Loc}, Err: fmt.Errorf("%w: %d bytes, the save says %d", chunker.ErrCorrupt, len(raw), e.Size)}
		}
		for _, off := range at[e.ID] {
			copy(graph[off:], raw)
		}
		mu.Lock()
		defer mu.Unlock()
		done += int64(len(raw)) * int64(len(at[e.ID]))
		if progress != nil {
			progress(done, l.Total)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("save %s: %w", m.ID, err)
	}
	if m.Tree == nil {
		if got := chunker.Sum(graph).String(); got != m.GraphSHA256 {
			return nil, nil, fmt.Errorf("save %s: graph hash %s, the manifest says %s: %w", m.ID, got, m.GraphSHA256, chunker.ErrCorrupt)
		}
	}
	return graph, entries, nil
}
