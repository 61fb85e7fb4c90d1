// Package catalog is the store side of saves. It lists a session's saves
// (Refs, List, ListAll, Sessions), chooses one (Newest, At,
// LoadCommitted: only committed saves, see claim.Commits), loads, puts and
// deletes manifests (Load, Put, Delete), and reads saves out of a store:
// the chunk tree (or, for format 1 saves, the chunk list) that says which
// chunks make a save and where they are, and the chunks themselves,
// verified. It is the one read path of restore, verify, gc and the
// commands that look back in time. The formats themselves (manifest, key
// layout, tree) are package manifest's.
//
// Format 2 chunks live in packs; ReadChunks reads them with ranged GETs,
// one per run of chunks that lie close together in a pack (gaps up to
// MaxGap are read and dropped rather than paid for with another request),
// several runs at a time. A pack that gc repacked is gone; every read
// then follows its forward record (Forwards, manifest.Forward) to where
// its chunks are now, so that saves never change.
package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// Read tuning.
const (
	// MaxGap is the most unwanted bytes between two wanted chunks of a pack
	// that one ranged read spans: on S3 a request costs about 20 ms, in
	// which a stream moves about 1 MiB.
	MaxGap = 1 << 20
	// MaxRead is the longest ranged read; longer runs are split so that a
	// large pack is read by several requests at once. A restore holds up to
	// MaxReadsInFlight of them besides the graph: 4 MiB against 8 lowered
	// the peak RSS of restoring a 1 GB graph by 19 MB and was not slower.
	MaxRead = 4 << 20
	// DefaultParallel is how many reads run at once.
	DefaultParallel = 16
)

// Ref names a chunk to read: its id and where it is stored.
type Ref struct {
	ID  chunker.ID
	Loc manifest.Loc
}

// String names the chunk and its place for error messages.
func (r Ref) String() string {
	if r.Loc.InPack() {
		return fmt.Sprintf("chunk %s (%s)", r.ID, r.Loc)
	}
	return fmt.Sprintf("chunk %s", r.ID)
}

// ErrMissing: a chunk's object (or pack) is not in the store.
var ErrMissing = errors.New("missing")

// ChunkError is a chunk that could not be read or is corrupt. Err wraps
// ErrMissing, chunker.ErrCorrupt or the store's error.
type ChunkError struct {
	Ref Ref
	Err error
}

func (e *ChunkError) Error() string { return fmt.Sprintf("%s: %v", e.Ref, e.Err) }
func (e *ChunkError) Unwrap() error { return e.Err }

// read is one request: a whole object, or a range of a pack holding some
// of the wanted chunks.
type read struct {
	key         string
	pack        manifest.PackID // zero for a format 1 chunk object
	off, length int64           // length 0: the whole object
	keep        bool            // keep the bytes in the cache
	refs        []int           // indices into the refs given to ReadChunks
}

// readOpts tune one batch of reads.
type readOpts struct {
	parallel int
	cache    *spans                    // ranges kept across batches (nil: none)
	sizes    map[manifest.PackID]int64 // pack sizes, when known
	window   int64                     // extend each range this far back (tree nodes)
	// into, if set, gives the place to decompress ref i into (exactly
	// its size), instead of a new buffer: restore decodes each chunk
	// straight into the graph.
	into func(i int) []byte
	// fwd keeps the forward records read (default: the cache's, or new).
	fwd *Forwards
	// named counts the retries of refs not found where a record (or a
	// bundle's copy of one) led: 1, read through the records themselves
	// (fwd.records()); 2, read in the very pack the save names, following
	// a record only if it is gone (a pack a stopped run left behind). A
	// failure at 2 is final.
	named int
}

// plan groups refs into reads: format 1 chunks one object each, pack chunks
// merged into ranges of at most MaxRead bytes with gaps of at most MaxGap,
// or, with a cache, a small pack whole, and ranges extended back by the
// window. refs hold distinct ids (readRefs drops repeats before).
func plan(refs []Ref, o readOpts) []read {
	var reads []read
	byPack := map[manifest.PackID][]int{}
	for i, r := range refs {
		if !r.Loc.InPack() {
			reads = append(reads, read{key: r.Loc.Key(r.ID), refs: []int{i}})
			continue
		}
		byPack[r.Loc.Pack] = append(byPack[r.Loc.Pack], i)
	}
	packs := make([]manifest.PackID, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	slices.SortFunc(packs, func(a, b manifest.PackID) int { return slices.Compare(a[:], b[:]) })
	for _, p := range packs {
		idx := byPack[p]
		if size, ok := o.sizes[p]; ok && o.cache != nil && size <= WholePack {
			reads = append(reads, read{key: manifest.PackKey(p), pack: p, off: 0, length: size, refs: idx, keep: true})
			continue
		}
		slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(refs[a].Loc.Offset, refs[b].Loc.Offset) })
		var cur *read
		for _, i := range idx {
			l := refs[i].Loc
			if cur != nil && l.Offset-(cur.off+cur.length) <= MaxGap && l.Offset+l.Length-cur.off <= MaxRead {
				cur.length = max(cur.length, l.Offset+l.Length-cur.off)
				cur.refs = append(cur.refs, i)
				continue
			}
			reads = append(reads, read{key: manifest.PackKey(p), pack: p, off: l.Offset, length: l.Length, refs: []int{i}})
			cur = &reads[len(reads)-1]
		}
	}
	if o.window > 0 {
		for i := range reads {
			if r := &reads[i]; r.length > 0 {
				end := r.off + r.length
				r.off = max(0, min(r.off, end-o.window))
				r.length, r.keep = end-r.off, o.cache != nil
			}
		}
	}
	return reads
}

// ReadChunks reads the chunks refs name, checks each against its id and
// calls fn with its index in refs and its raw bytes. Each distinct id is
// read and given to fn once, at the index of its first ref. fn may be
// called from several goroutines at once, and must not keep raw past its
// return unless it copies it. The first failure ends the reads; a chunk
// that cannot be read or is corrupt is a *ChunkError.
func ReadChunks(ctx context.Context, st store.Store, refs []Ref, parallel int, fn func(i int, raw []byte) error) error {
	return ReadEach(ctx, st, refs, parallel, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		return fn(i, raw)
	})
}

// ReadEach is ReadChunks for a caller that wants every verdict: a chunk
// that cannot be read or is corrupt is given to fn with a *ChunkError (and
// nil raw) instead of ending the reads. The reads end when fn returns an
// error or ctx ends.
func ReadEach(ctx context.Context, st store.Store, refs []Ref, parallel int, fn func(i int, raw []byte, err error) error) error {
	return readRefs(ctx, st, refs, readOpts{parallel: parallel}, fn)
}

// ReadEachWith is ReadEach with the forward records in fw (see
// NodeCache.EntriesWith).
func ReadEachWith(ctx context.Context, st store.Store, refs []Ref, parallel int, fw *Forwards, fn func(i int, raw []byte, err error) error) error {
	return readRefs(ctx, st, refs, readOpts{parallel: parallel, fwd: fw}, fn)
}

// decodeBatch is how many cached frames one goroutine decodes at a time.
const decodeBatch = 64

func readRefs(ctx context.Context, st store.Store, refs []Ref, o readOpts, fn func(i int, raw []byte, err error) error) error {
	if o.parallel <= 0 {
		o.parallel = DefaultParallel
	}
	if o.fwd == nil {
		o.fwd = NewForwards()
		if o.cache != nil {
			o.fwd = o.cache.fwd
		}
	}
	if o.named < 2 {
		o.fwd.preload(ctx, st, refs, o.parallel)
	}
	var cached []int     // indices of refs whose frame o.cache holds
	var cachedRefs []Ref // and where it holds them (after skip)
	var todo []Ref
	var index []int // todo[j] is refs[index[j]]
	seen := make(map[chunker.ID]bool, len(refs))
	for i, r := range refs {
		if seen[r.ID] {
			continue // each distinct id once, at its first index
		}
		seen[r.ID] = true
		if o.named < 2 {
			r = o.fwd.skip(r)
		}
		if o.cache.get(r.Loc) != nil {
			cached = append(cached, i)
			cachedRefs = append(cachedRefs, r)
			continue
		}
		todo = append(todo, r)
		index = append(index, i)
	}
	// The refs moved by a record (or a bundle's copy of one) and not where
	// it leads (a gc run that stopped before deleting the pack, a stale
	// copy) are read afterwards where the save names them, together,
	// through the records themselves.
	var retryMu sync.Mutex
	var retry []int
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.parallel)
	// Frames already read are decoded on the group too, a batch each, so
	// that a save read whole beforehand (prefetch) decodes on every core.
	for start := 0; start < len(cached) && gctx.Err() == nil; start += decodeBatch {
		end := min(start+decodeBatch, len(cached))
		batch, batchRefs := cached[start:end], cachedRefs[start:end]
		g.Go(func() error {
			for k, i := range batch {
				r := batchRefs[k]
				raw, err := decode(r, o.cache.get(r.Loc), o.into, i)
				if err := fn(i, raw, err); err != nil {
					return err
				}
			}
			return gctx.Err()
		})
	}
	for _, rd := range plan(todo, o) {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			return doRead(gctx, st, todo, rd, o, 0, func(j int, frame []byte, err error) error {
				i := index[j]
				var raw []byte
				if err == nil {
					raw, err = decode(todo[j], frame, o.into, i)
				} else if errors.Is(err, ErrMissing) && todo[j].Loc != refs[i].Loc && o.named < 2 {
					retryMu.Lock()
					retry = append(retry, i)
					retryMu.Unlock()
					return nil
				}
				return fn(i, raw, err)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(retry) > 0 && ctx.Err() == nil {
		return readWhereNamed(ctx, st, refs, retry, o, fn)
	}
	return ctx.Err()
}

// readWhereNamed reads refs[idx] at their own locations, following forward
// records (read afresh, never a bundle's copies) only where a pack is
// gone, and gives each to fn at its index in refs.
func readWhereNamed(ctx context.Context, st store.Store, refs []Ref, idx []int, o readOpts, fn func(int, []byte, error) error) error {
	sub := make([]Ref, len(idx))
	for k, i := range idx {
		sub[k] = refs[i]
	}
	so := readOpts{parallel: o.parallel, fwd: o.fwd.records(), named: o.named + 1}
	if o.into != nil {
		so.into = func(k int) []byte { return o.into(idx[k]) }
	}
	return readRefs(ctx, st, sub, so, func(k int, raw []byte, err error) error {
		return fn(idx[k], raw, err)
	})
}

// decode decompresses and checks ref r's frame, the chunk at index i,
// into into(i) when into is set; a failure is a *ChunkError.
func decode(r Ref, frame []byte, into func(int) []byte, i int) ([]byte, error) {
	var raw []byte
	var err error
	if into != nil {
		raw = into(i)
		err = chunker.DecodeInto(r.ID, frame, raw)
	} else {
		raw, err = chunker.Decode(r.ID, frame)
	}
	if err != nil {
		return nil, &ChunkError{Ref: r, Err: err}
	}
	return raw, nil
}

// doRead makes read rd and calls fn with the frame of each of its refs
// (not yet decoded), or with the read's error. A pack that is not in the
// store is looked for in its forward record, and the refs it moves are
// read where they are now (depth: records followed so far).
func doRead(ctx context.Context, st store.Store, refs []Ref, rd read, o readOpts, depth int, fn func(int, []byte, error) error) error {
	var body []byte
	var err error
	if rd.length == 0 {
		body, err = st.Get(ctx, rd.key)
	} else {
		body, err = st.GetRange(ctx, rd.key, rd.off, rd.length)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, store.ErrNotFound) && !rd.pack.IsZero() && depth < MaxForwards {
			o.fwd.listGone(ctx, st) // for the next reads
			return readForwarded(ctx, st, refs, rd, o, depth, fn)
		}
		switch {
		case errors.Is(err, store.ErrNotFound) && !rd.pack.IsZero():
			err = fmt.Errorf("%w: %s is not in the store, after %d forward records: %w", ErrMissing, rd.key, depth, err)
		case errors.Is(err, store.ErrNotFound):
			err = fmt.Errorf("%w: %s is not in the store: %w", ErrMissing, rd.key, err)
		default:
			err = fmt.Errorf("read %s: %w", rd.key, err)
		}
		return failAll(refs, rd.refs, err, fn)
	}
	if rd.keep {
		o.cache.put(rd.pack, rd.off, body)
	}
	for _, i := range rd.refs {
		r := refs[i]
		frame := body
		if rd.length != 0 {
			start := r.Loc.Offset - rd.off
			frame = body[start : start+r.Loc.Length]
		}
		if err := fn(i, frame, nil); err != nil {
			return err
		}
	}
	return nil
}

// failAll gives err, as a *ChunkError, for each of refs[idx].
func failAll(refs []Ref, idx []int, err error, fn func(int, []byte, error) error) error {
	for _, i := range idx {
		if ferr := fn(i, nil, &ChunkError{Ref: refs[i], Err: err}); ferr != nil {
			return ferr
		}
	}
	return nil
}

// readForwarded reads the refs of rd, whose pack is gone, where its
// forward record says they are now (fn may be called from several
// goroutines, as for any read).
func readForwarded(ctx context.Context, st store.Store, refs []Ref, rd read, o readOpts, depth int, fn func(int, []byte, error) error) error {
	moved, bad, err := o.fwd.forward(ctx, st, rd.pack, refs, rd.refs)
	if err != nil {
		return failAll(refs, rd.refs, err, fn)
	}
	var sub []Ref
	var back []int // sub[j] is refs[back[j]]
	for k, i := range rd.refs {
		if bad[k] != nil {
			if err := fn(i, nil, &ChunkError{Ref: refs[i], Err: bad[k]}); err != nil {
				return err
			}
			continue
		}
		sub = append(sub, moved[k])
		back = append(back, i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, o.parallel))
	for _, srd := range plan(sub, readOpts{}) {
		g.Go(func() error {
			return doRead(gctx, st, sub, srd, o, depth+1, func(j int, frame []byte, err error) error {
				return fn(back[j], frame, err)
			})
		})
	}
	return g.Wait()
}

// readNodes reads and decodes tree nodes, in the order of refs, taking
// those in cache from it and adding the others.
func readNodes(ctx context.Context, st store.Store, refs []Ref, o readOpts, cache NodeCache) ([]*manifest.TreeNode, error) {
	var missing []Ref
	for _, r := range refs {
		if cache[r.ID] == nil {
			missing = append(missing, r)
		}
	}
	got := make([]*manifest.TreeNode, len(missing))
	err := readRefs(ctx, st, missing, o, func(i int, raw []byte, err error) error {
		if err != nil {
			return err
		}
		n, err := manifest.DecodeTreeNode(raw)
		if err != nil {
			return &ChunkError{Ref: missing[i], Err: err}
		}
		got[i] = n // one writer per index
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, n := range got {
		if n != nil {
			cache[missing[i].ID] = n
		}
	}
	nodes := make([]*manifest.TreeNode, len(refs))
	for i, r := range refs {
		nodes[i] = cache[r.ID]
	}
	return nodes, nil
}
