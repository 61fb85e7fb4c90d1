// Package verify owns `pitr verify`: it checks that the saves of a session
// can be restored, and names every problem it finds rather than the first.
//
// Every check is done once per distinct chunk, however many saves share it,
// and reported for every save that uses the chunk:
//
//   - always: every manifest loads and decodes; the chunk tree of every
//     format 2 save is read (each distinct node once, every node checked
//     against its id, sizes and counts against the manifest) — or, for a
//     format 1 save, its list chunks, which must add up to the manifest's
//     entry count; every pack (or format 1 chunk object) exists (Stat);
//   - ReadData: every data chunk is read instead (by ranged reads of its
//     pack, neighbours merged), decompressed, checked against its hash and
//     its size in the tree, and every save's graph is assembled, checked
//     against the manifest and decoded. A bad chunk is named with its pack.
//     Saves are taken oldest first and the chunks of the previous save are
//     kept in memory, so consecutive saves download only what changed (a
//     chunk that comes back after an absence is downloaded again but not
//     re-reported);
//   - SubsetPercent: a random share of the distinct data chunks (a seeded
//     choice, reproducible with the same seed on the same store) is
//     downloaded and checked as above, the others' objects are Stat-ed;
//     saves are not decoded.
package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// DefaultParallel bounds the store requests in flight.
const DefaultParallel = 16

// Kind classifies a problem.
type Kind string

// The kinds of problems.
const (
	// Manifest: the save's manifest cannot be read or decoded.
	Manifest Kind = "manifest unreadable"
	// Missing: a chunk the save names is not in the store.
	Missing Kind = "missing"
	// Corrupt: a chunk does not decompress, or does not hash to its id.
	Corrupt Kind = "corrupt"
	// BadList: a list chunk does not decode, or the lists do not add up.
	BadList Kind = "bad chunk list"
	// Size: a data chunk's size differs from the one in the chunk list.
	Size Kind = "size mismatch"
	// Graph: the assembled graph does not match the manifest or decode.
	Graph Kind = "graph does not decode"
	// Unreadable: the store failed to answer for the chunk (not a
	// not-found); it could not be checked.
	Unreadable Kind = "unreadable"
)

// Problem is one thing wrong with one save.
type Problem struct {
	SaveID  string
	ChunkID string // "" when the problem is the save's as a whole
	Kind    Kind
	What    string // human-readable, starting with the kind
}

// String is "save <id>: chunk <id>: <what>" (no chunk part without a
// chunk).
func (p Problem) String() string {
	if p.ChunkID == "" {
		return "save " + p.SaveID + ": " + p.What
	}
	return "save " + p.SaveID + ": chunk " + p.ChunkID + ": " + p.What
}

// Options configures Run.
type Options struct {
	// SaveID restricts the check to one save.
	SaveID string
	// ReadData downloads and checks every data chunk and decodes every save.
	ReadData bool
	// SubsetPercent, in (0, 100] and without ReadData, downloads and checks
	// that share of the distinct data chunks (rounded up), chosen with Seed.
	// 0 reads no data chunk.
	SubsetPercent float64
	// Seed seeds the choice of the subset.
	Seed int64
	// Parallel bounds the store requests in flight (default DefaultParallel).
	Parallel int
	// Progress, if set, is told how many of the distinct data chunks have
	// been checked, out of total; calls are serialized and must be quick.
	Progress func(done, total int64)
}

// Report is what Run checked and found.
type Report struct {
	Session    string
	Saves      int // saves checked
	Chunks     int // distinct chunks checked: ListChunks + TreeNodes + DataChunks
	ListChunks int // chunk list chunks of format 1 saves
	TreeNodes  int // chunk tree nodes of format 2 saves
	DataChunks int
	Read       int   // distinct data chunks downloaded and hash-checked
	Downloads  int   // data chunk downloads (≥ Read: see the package comment)
	BytesRead  int64 // stored bytes of those downloads
	Decoded    int   // saves whose whole graph was checked and decoded
	Subset     bool  // a subset of the data chunks was read (SubsetPercent)
	Seed       int64
	Problems   []Problem
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// save is one save under check.
type save struct {
	id      string
	m       *manifest.Manifest // nil when the manifest did not load
	entries []manifest.Entry   // nil unless every list chunk decoded and they add up
	probs   []Problem
}

// verdict is the result of checking one chunk.
type verdict struct {
	kind Kind // "" when the chunk is fine
	what string
}

// Run checks the saves of session in st. Problems with the saves are in the
// report; the error is for a check that could not run at all (the saves
// cannot be listed, --save names no save, bad options).
func Run(ctx context.Context, st store.Store, session string, opts Options) (Report, error) {
	rep := Report{Session: session, Seed: opts.Seed}
	if opts.SubsetPercent < 0 || opts.SubsetPercent > 100 || opts.SubsetPercent != opts.SubsetPercent {
		return rep, fmt.Errorf("verify: subset %v%% is not in 0..100", opts.SubsetPercent)
	}
	if opts.ReadData && opts.SubsetPercent > 0 {
		return rep, errors.New("verify: read all data or a subset, not both")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	rep.Subset = opts.SubsetPercent > 0
	saves, err := loadSaves(ctx, st, session, opts)
	if err != nil {
		return rep, err
	}
	rep.Saves = len(saves)
	fw := catalog.NewForwards() // every read below shares the forward records it meets
	fw.RecordsOnly()            // verify checks the records themselves, not a bundle's copies
	fw.ListGone(ctx, st)        // so that no read asks for a pack gc repacked
	if err := checkLists(ctx, st, saves, opts.Parallel, fw, &rep); err != nil {
		return rep, err
	}
	c := &checker{st: st, parallel: opts.Parallel, rep: &rep, fw: fw, verdicts: map[chunker.ID]verdict{}, progress: opts.Progress}
	switch {
	case opts.ReadData:
		err = c.readAll(ctx, saves)
	default:
		err = c.checkSubset(ctx, saves, opts.SubsetPercent, opts.Seed)
	}
	if err != nil {
		return rep, err
	}
	rep.Chunks = rep.ListChunks + rep.TreeNodes + rep.DataChunks
	for _, s := range saves {
		rep.Problems = append(rep.Problems, s.probs...)
	}
	return rep, nil
}

// loadSaves loads the manifest of every save (or of opts.SaveID), oldest
// first. A manifest that does not load is a problem of that save; one that
// vanished since the listing (pruned meanwhile) is skipped.
func loadSaves(ctx context.Context, st store.Store, session string, opts Options) ([]*save, error) {
	if opts.SaveID != "" {
		m, err := catalog.Load(ctx, st, session, opts.SaveID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("verify: save %s of session %s: %w", opts.SaveID, session, err)
		case errors.Is(err, manifest.ErrBadID) || errors.Is(err, manifest.ErrBadSession):
			return nil, fmt.Errorf("verify: %w", err)
		case err != nil:
			return []*save{{id: opts.SaveID, probs: []Problem{manifestProblem(opts.SaveID, err)}}}, nil
		}
		return []*save{{id: m.ID, m: m}}, nil
	}
	refs, err := catalog.Refs(ctx, st, session)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("verify: session %s in %s: %w", session, st, manifest.ErrNoSaves)
	}
	saves := make([]*save, len(refs))
	gone := make([]bool, len(refs))
	err = forEach(ctx, len(refs), opts.Parallel, func(ctx context.Context, i int) error {
		saves[i] = &save{id: refs[i].ID}
		m, err := catalog.Load(ctx, st, session, refs[i].ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			gone[i] = true
		case err != nil:
			if ctx.Err() != nil {
				return err
			}
			saves[i].probs = append(saves[i].probs, manifestProblem(refs[i].ID, err))
		default:
			saves[i].m = m
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: load manifests of session %s: %w", session, err)
	}
	out := saves[:0]
	for i, s := range saves {
		if !gone[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

func manifestProblem(id string, err error) Problem {
	return Problem{SaveID: id, Kind: Manifest, What: string(Manifest) + ": " + err.Error()}
}

// checkLists reads every distinct list chunk once and sets the entries of
// every save whose lists are whole.
func checkLists(ctx context.Context, st store.Store, saves []*save, parallel int, fw *catalog.Forwards, rep *Report) error {
	if err := checkTrees(ctx, st, saves, fw, rep); err != nil {
		return err
	}
	var ids []chunker.ID
	seen := map[chunker.ID]bool{}
	for _, s := range saves {
		if s.m == nil || s.m.Tree != nil {
			continue
		}
		for _, c := range s.m.ChunkList.Chunks {
			if !seen[c.ID] {
				seen[c.ID] = true
				ids = append(ids, c.ID)
			}
		}
	}
	rep.ListChunks += len(ids)
	lists := make([][]manifest.Entry, len(ids))
	verdicts := make([]verdict, len(ids))
	err := forEach(ctx, len(ids), parallel, func(ctx context.Context, i int) error {
		raw, v, _, err := fetch(ctx, st, ids[i])
		if err != nil {
			return err
		}
		if v.kind == "" {
			lists[i], err = manifest.DecodeList(raw)
			if err != nil {
				v = verdict{BadList, string(BadList) + ": " + strings.TrimPrefix(err.Error(), "decode chunk list: ")}
			}
		}
		verdicts[i] = v
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: read chunk lists: %w", err)
	}
	index := make(map[chunker.ID]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	for _, s := range saves {
		if s.m == nil || s.m.Tree != nil {
			continue
		}
		whole := true
		var entries []manifest.Entry
		for _, c := range s.m.ChunkList.Chunks {
			i := index[c.ID]
			if v := verdicts[i]; v.kind != "" {
				whole = false
				s.probs = append(s.probs, Problem{SaveID: s.id, ChunkID: c.ID.String(), Kind: v.kind,
					What: v.what + " (a chunk of the save's chunk list: its data chunks cannot be checked)"})
				continue
			}
			entries = append(entries, lists[i]...)
		}
		if !whole {
			continue
		}
		if len(entries) != s.m.ChunkList.Entries {
			s.probs = append(s.probs, Problem{SaveID: s.id, Kind: BadList,
				What: fmt.Sprintf("%s: the chunk list has %d entries, the manifest says %d", BadList, len(entries), s.m.ChunkList.Entries)})
			continue
		}
		if entries == nil {
			entries = []manifest.Entry{} // an empty graph: whole, nothing to check
		}
		s.entries = entries
	}
	return nil
}

// checkTrees reads the chunk tree of every format 2 save (each distinct
// node once) and sets the entries of every save whose tree is whole.
func checkTrees(ctx context.Context, st store.Store, saves []*save, fw *catalog.Forwards, rep *Report) error {
	cache := catalog.NodeCache{}
	for _, s := range saves {
		if s.m == nil || s.m.Tree == nil {
			continue
		}
		entries, err := cache.EntriesWith(ctx, st, s.m, nil, fw)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("verify: read chunk trees: %w", ctx.Err())
			}
			p := Problem{SaveID: s.id, Kind: BadList, What: string(BadList) + ": " + err.Error()}
			var ce *catalog.ChunkError
			if errors.As(err, &ce) {
				v := verdictOf(ce)
				p = Problem{SaveID: s.id, ChunkID: ce.Ref.ID.String(), Kind: v.kind,
					What: v.what + " (a node of the save's chunk tree: the data chunks under it cannot be checked)"}
			}
			s.probs = append(s.probs, p)
			continue
		}
		s.entries = entries
	}
	rep.TreeNodes += len(cache)
	return nil
}

// verdictOf classifies a chunk the catalog could not read, naming its pack.
func verdictOf(ce *catalog.ChunkError) verdict {
	where := ""
	if ce.Ref.Loc.InPack() {
		where = " (in " + ce.Ref.Loc.String() + ")"
	}
	msg := ce.Err.Error()
	switch {
	case errors.Is(ce.Err, catalog.ErrMissing):
		// The catalog says what it looked for: the pack, its forward record.
		return verdict{Missing, string(Missing) + where + strings.TrimPrefix(msg, string(Missing))}
	case errors.Is(ce.Err, chunker.ErrCorrupt), errors.Is(ce.Err, manifest.ErrBadList):
		return verdict{Corrupt, string(Corrupt) + where + ": " + strings.TrimPrefix(msg, "chunk "+ce.Ref.ID.String()+": ")}
	}
	return verdict{Unreadable, string(Unreadable) + where + ": " + msg}
}

// fetch downloads chunk id and checks it. A problem with the chunk is in
// the verdict; the error is only for a cancelled context.
// n is the stored (compressed) size downloaded.
func fetch(ctx context.Context, st store.Store, id chunker.ID) (raw []byte, v verdict, n int64, err error) {
	body, err := st.Get(ctx, chunker.ObjectKey(id))
	if v, stop := storeVerdict(ctx, err); stop != nil || v.kind != "" {
		return nil, v, 0, stop
	}
	raw, err = chunker.Decode(id, body)
	if err != nil {
		return nil, verdict{Corrupt, strings.TrimPrefix(err.Error(), "chunk "+id.String()+": ")}, int64(len(body)), nil
	}
	return raw, verdict{}, int64(len(body)), nil
}

// storeVerdict turns a store error into a verdict; stop is set when the
// context ended, which is no verdict on the chunk.
func storeVerdict(ctx context.Context, err error) (v verdict, stop error) {
	switch {
	case err == nil:
		return verdict{}, nil
	case ctx.Err() != nil:
		return verdict{}, ctx.Err()
	case errors.Is(err, store.ErrNotFound):
		return verdict{Missing, string(Missing)}, nil
	default:
		return verdict{Unreadable, string(Unreadable) + ": " + err.Error()}, nil
	}
}

// checker holds the per-chunk verdicts of the data chunks.
type checker struct {
	st       store.Store
	parallel int
	rep      *Report
	fw       *catalog.Forwards // the forward records met, shared by every read

	mu       sync.Mutex
	verdicts map[chunker.ID]verdict
	progress func(done, total int64)
}

// setVerdictLocked records the verdict on data chunk id and reports
// progress.
func (c *checker) setVerdictLocked(id chunker.ID, v verdict) {
	c.verdicts[id] = v
	if c.progress != nil {
		c.progress(int64(len(c.verdicts)), int64(c.rep.DataChunks))
	}
}

// distinct returns the distinct data chunks of the saves whose lists are
// whole, sorted by id, with their sizes from the chunk lists.
func distinct(saves []*save) []manifest.Entry {
	seen := map[chunker.ID]bool{}
	var out []manifest.Entry
	for _, s := range saves {
		for _, e := range s.entries {
			if !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b manifest.Entry) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// report adds a problem to every save for each of its data chunks with a
// bad verdict, once per save and chunk, in chunk list order.
func (c *checker) report(saves []*save) {
	for _, s := range saves {
		done := map[chunker.ID]bool{}
		for _, e := range s.entries {
			v, ok := c.verdicts[e.ID]
			if !ok || v.kind == "" || done[e.ID] {
				continue
			}
			done[e.ID] = true
			s.probs = append(s.probs, Problem{SaveID: s.id, ChunkID: e.ID.String(), Kind: v.kind, What: v.what})
		}
	}
}

// forEach runs fn(i) for i in [0,n), at most parallel at once, stopping at
// the first error.
func forEach(ctx context.Context, n, parallel int, fn func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
