package gc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// DefaultParallel bounds the list chunk reads and deletes in flight.
const DefaultParallel = 16

// chunksPrefix is where chunk objects live (chunker.ObjectKey).
const chunksPrefix = "chunks/"

// ErrAborted wraps every error of the mark phase: gc stopped before
// deleting anything.
var ErrAborted = errors.New("gc aborted, nothing deleted")

// Options configures Run.
type Options struct {
	// Grace: only chunks whose ModTime is strictly before its Cutoff of
	// the run's start are deleted (gcsafety.Expired). It is taken as
	// given: 0 deletes every unreferenced chunk, which is only safe while
	// no save is in flight. The CLI default is gcsafety.DefaultGrace.
	// Negative is an error.
	Grace gcsafety.Grace
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Clock tells the run's start, T0 (default the wall clock).
	Clock clock.Clock
	// Parallel bounds the list chunk reads and deletes at once (default
	// DefaultParallel).
	Parallel int
	// Log, if set, gets one progress line per phase.
	Log io.Writer
	// MaxUnused: a pack kept saves name, but not the newest ones, is
	// repacked once more than this share of its bytes is unused by them
	// or held by another copy in another pack (default DefaultMaxUnused;
	// 1 or more: never). See "Repacking" in the package comment.
	MaxUnused float64
}

// Report says what a run found and did.
type Report struct {
	Cutoff time.Time // chunks with a ModTime before it were old enough to go
	DryRun bool

	Sessions   int // sessions in the store
	Saves      int // manifests read
	ListChunks int // distinct list chunks read
	Referenced int // distinct chunk objects (list and data) format 1 saves reference
	// ReferencedPacks counts the distinct packs format 2 saves reference.
	ReferencedPacks int
	// Pinned counts packs no save references yet that a writer claim pins
	// for a save in flight.
	Pinned int

	Scanned      int   // chunk objects and packs listed under chunks/
	ScannedBytes int64 // their stored (compressed) size
	Deleted      int   // unreferenced old chunk objects and packs deleted (DryRun: that would be)
	BytesFreed   int64 // their stored size
	KeptYoung    int   // unreferenced objects kept because not older than the grace
	Missing      int   // referenced chunk objects and packs absent from chunks/, with no forward record (see pitr verify)
	Ignored      int   // objects under chunks/ that are neither a chunk, a pack nor a forward record

	Forwarded int // packs gone whose forward records were followed
	// Bundled counts the records copied into the forward bundle the run
	// wrote (0: none written); BundleSkipped says why none could be.
	Bundled       int
	BundleSkipped string
	Repacked      int   // packs repacked: forwarded, then deleted (DryRun: that would be)
	RepackFreed   int64 // their stored size
	RepackCopied  int64 // bytes of chunks only they held, copied into new packs
	RepackPacks   int   // new packs written for those
	// ForwardsRewritten counts records rewritten to point past packs
	// repacked since they were written.
	ForwardsRewritten int
	// RepackSkipped says why nothing was repacked, when a kept save's
	// tree could not be read (the sweep still ran).
	RepackSkipped string
}

// Run marks every chunk any save of any session references and deletes
// the unreferenced chunks older than the grace; see the package comment.
// On an error the report holds what was done until then; an error of the
// mark phase wraps ErrAborted and nothing was deleted.
func Run(ctx context.Context, st store.Store, opts Options) (Report, error) {
	if err := opts.Grace.Check(); err != nil {
		return Report{}, fmt.Errorf("gc of %s: %w", st, err)
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	clk := clock.Or(opts.Clock)
	t0 := clk.Now() // before anything is read
	rep := Report{Cutoff: opts.Grace.Cutoff(t0), DryRun: opts.DryRun}
	var l *lease
	if !opts.DryRun {
		var err error
		if l, err = acquireLease(ctx, st, clk); err != nil {
			return rep, fmt.Errorf("gc of %s: %w", st, err)
		}
		defer l.release(context.WithoutCancel(ctx))
	}
	marked, err := mark(ctx, st, opts.Parallel, &rep)
	if err == nil {
		err = markPinned(ctx, st, marked, &rep)
	}
	var ls listing
	if err == nil {
		ls, err = list(ctx, st, &rep)
	}
	fw := catalog.NewForwards()
	fw.RecordsOnly() // gc goes by the records themselves, never a bundle's copies
	if err == nil {
		err = reach(ctx, st, marked, ls, fw, &rep)
	}
	if err != nil {
		return rep, fmt.Errorf("gc of %s: %w: %w", st, ErrAborted, err)
	}
	logf(opts.Log, "gc: %d sessions, %d saves, %d chunks referenced (%d list chunks read), %d packs forwarded\n",
		rep.Sessions, rep.Saves, rep.Referenced, rep.ListChunks, rep.Forwarded)
	r := newRepacker(st, opts, marked, ls, fw, l, &rep)
	if err := r.run(ctx); err != nil {
		return rep, fmt.Errorf("gc of %s: repack: %w", st, err)
	}
	cands := candidates(ls, marked, &rep)
	logf(opts.Log, "gc: %d objects under chunks/, %d unreferenced and older than %s\n",
		rep.Scanned, len(cands), opts.Grace)
	if opts.DryRun {
		for _, c := range cands {
			rep.Deleted++
			rep.BytesFreed += c.Size
		}
		return rep, nil
	}
	if err := l.check(ctx); err != nil {
		return rep, fmt.Errorf("gc of %s: sweep: %w", st, err)
	}
	if err := sweep(ctx, st, cands, opts.Parallel, &rep); err != nil {
		return rep, fmt.Errorf("gc of %s: %w", st, err)
	}
	if err := bundle(ctx, st, ls, cands, fw, l, opts.Log, &rep); err != nil {
		return rep, fmt.Errorf("gc of %s: %w", st, err)
	}
	return rep, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// saveLists is what mark keeps of one manifest.
type saveLists struct {
	session, id string
	lists       []chunker.ID
	entries     int
}

// mark returns every chunk id the saves of the store reference.
// marks is what the saves reference: format 1 chunk objects by id, format
// 2 packs by id.
type marks struct {
	chunks map[chunker.ID]struct{}
	packs  map[manifest.PackID]struct{}
	// saves are the format 2 manifests read, oldest first per session.
	saves []*manifest.Manifest
	// named are the packs the saves name (packs reached only through
	// forward records are gc's own copies).
	named map[manifest.PackID]struct{}
	// anchors are the packs gc never repacks: those the newest committed
	// save of a session, a save newer than it or the claim's last commit
	// names, and pinned ones (package doc, "Repacking").
	anchors map[manifest.PackID]struct{}
}

func mark(ctx context.Context, st store.Store, parallel int, rep *Report) (marks, error) {
	mk := marks{packs: map[manifest.PackID]struct{}{}, anchors: map[manifest.PackID]struct{}{}, named: map[manifest.PackID]struct{}{}}
	sessions, err := catalog.Sessions(ctx, st)
	if err != nil {
		return mk, fmt.Errorf("mark: %w", err)
	}
	rep.Sessions = len(sessions)
	var saves []saveLists
	listOf := map[chunker.ID]*saveLists{} // each list chunk → a save naming it (for errors)
	for _, s := range sessions {
		// The newest committed save is read before the list: a save
		// committed after it is listed, and bases on it or on a later one.
		newest, err := catalog.Newest(ctx, st, s)
		if err != nil && !errors.Is(err, manifest.ErrNoSaves) {
			return mk, fmt.Errorf("mark: %w", err)
		}
		// The claim's last commit anchors too, whatever its time says (a
		// writer whose clock is behind the previous one's).
		commits, err := claim.ReadCommits(ctx, st, s)
		if err != nil {
			return mk, fmt.Errorf("mark: %w", err)
		}
		last := commits.LastCommitted()
		ms, err := catalog.ListAll(ctx, st, s)
		if err != nil {
			return mk, fmt.Errorf("mark: %w", err)
		}
		rep.Saves += len(ms)
		for _, m := range ms {
			anchored := newest == nil || !m.Time.Before(newest.Time) || m.ID == last
			for p := range m.Packs { // a format 2 save names every pack it uses
				mk.packs[p] = struct{}{}
				mk.named[p] = struct{}{}
				if anchored {
					mk.anchors[p] = struct{}{}
				}
			}
			if m.Tree != nil {
				mk.saves = append(mk.saves, m)
				continue
			}
			sl := saveLists{session: s, id: m.ID, entries: m.ChunkList.Entries}
			for _, c := range m.ChunkList.Chunks {
				sl.lists = append(sl.lists, c.ID)
			}
			saves = append(saves, sl)
		}
	}
	for i := range saves {
		for _, id := range saves[i].lists {
			if _, ok := listOf[id]; !ok {
				listOf[id] = &saves[i]
			}
		}
	}
	marked, counts, err := readLists(ctx, st, listOf, parallel)
	if err != nil {
		return mk, err
	}
	rep.ListChunks = len(listOf)
	for _, s := range saves {
		n := 0
		for _, id := range s.lists {
			n += counts[id]
		}
		if n != s.entries {
			return mk, fmt.Errorf("mark: save %s of session %s: chunk list has %d entries, manifest says %d: %w",
				s.id, s.session, n, s.entries, chunker.ErrCorrupt)
		}
	}
	rep.Referenced, rep.ReferencedPacks = len(marked), len(mk.packs)
	mk.chunks = marked
	return mk, nil
}

// readLists reads each list chunk once and returns the set of the list
// chunks and the data chunks they name, and each list chunk's entry count.
func readLists(ctx context.Context, st store.Store, listOf map[chunker.ID]*saveLists, parallel int) (map[chunker.ID]struct{}, map[chunker.ID]int, error) {
	ids := make([]chunker.ID, 0, len(listOf))
	for id := range listOf {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b chunker.ID) int { return bytes.Compare(a[:], b[:]) })
	var (
		mu     sync.Mutex
		marked = make(map[chunker.ID]struct{}, len(ids)*32)
		counts = make(map[chunker.ID]int, len(ids))
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, id := range ids {
		g.Go(func() error {
			entries, err := readList(gctx, st, id)
			if err != nil {
				s := listOf[id]
				return fmt.Errorf("mark: chunk list of save %s of session %s: %w", s.id, s.session, err)
			}
			mu.Lock()
			defer mu.Unlock()
			marked[id] = struct{}{}
			counts[id] = len(entries)
			for _, e := range entries {
				marked[e.ID] = struct{}{}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return marked, counts, nil
}

func readList(ctx context.Context, st store.Store, id chunker.ID) ([]manifest.Entry, error) {
	key := chunker.ObjectKey(id)
	body, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read list chunk %s: %w", key, err)
	}
	raw, err := chunker.Decode(id, body)
	if err != nil {
		return nil, fmt.Errorf("read list chunk %s: %w", key, err)
	}
	entries, err := manifest.DecodeList(raw)
	if err != nil {
		return nil, fmt.Errorf("read list chunk %s: %w", key, err)
	}
	return entries, nil
}

// markPinned marks the packs the sessions' writer claims pin for saves in
// flight. It lists the sessions again, after the manifests were read: a
// save that pinned packs after this listing found their saves still there
// after the manifests were listed, so mark saw them (package gc).
func markPinned(ctx context.Context, st store.Store, mk marks, rep *Report) error {
	sessions, err := catalog.Sessions(ctx, st)
	if err != nil {
		return fmt.Errorf("mark pinned packs: %w", err)
	}
	for _, s := range sessions {
		pinned, err := claim.Pinned(ctx, st, s)
		if err != nil {
			return fmt.Errorf("mark pinned packs: %w", err)
		}
		for _, p := range pinned {
			mk.anchors[p] = struct{}{}
			if _, ok := mk.packs[p]; !ok {
				mk.packs[p] = struct{}{}
				rep.Pinned++
			}
		}
	}
	return nil
}

// listing is what gc found under chunks/.
type listing struct {
	packs    map[manifest.PackID]store.ObjectInfo
	forwards map[manifest.PackID]store.ObjectInfo
	bundles  []store.ObjectInfo // forward bundles (bundle.go)
	objects  []store.ObjectInfo // format 1 chunk objects
}

// list lists chunks/.
func list(ctx context.Context, st store.Store, rep *Report) (listing, error) {
	ls := listing{packs: map[manifest.PackID]store.ObjectInfo{}, forwards: map[manifest.PackID]store.ObjectInfo{}}
	err := st.List(ctx, store.ListOptions{Prefix: chunksPrefix}, func(o store.ObjectInfo) error {
		if o.IsPrefix || o.Key == LeaseKey {
			return nil
		}
		if manifest.IsBundleKey(o.Key) {
			ls.bundles = append(ls.bundles, o)
			return nil
		}
		if p, ok := manifest.ParsePackKey(o.Key); ok {
			ls.packs[p] = o
		} else if p, ok := manifest.ParseForwardKey(o.Key); ok {
			ls.forwards[p] = o
		} else if _, err := chunker.ParseID(strings.TrimPrefix(o.Key, chunksPrefix)); err == nil {
			ls.objects = append(ls.objects, o)
		} else {
			rep.Ignored++
			return nil
		}
		rep.Scanned++
		rep.ScannedBytes += o.Size
		return nil
	})
	if err != nil {
		return ls, fmt.Errorf("list %s: %w", chunksPrefix, err)
	}
	return ls, nil
}

// reach follows forward records: a marked pack that is not in the store
// is looked for in its record (read directly, not trusted to the
// listing), and the packs the record forwards to are marked, until
// nothing new is marked. A marked pack still in the store whose record is
// listed too (a run stopped between the two) has its targets marked, so
// that the run that completes it never deletes them. A record that cannot be read or decoded aborts
// the run; a pack with neither object nor record is missing.
func reach(ctx context.Context, st store.Store, mk marks, ls listing, fw *catalog.Forwards, rep *Report) error {
	var queue []manifest.PackID
	for p := range mk.packs {
		_, present := ls.packs[p]
		_, forwarded := ls.forwards[p]
		if !present || forwarded { // a run that stopped before deleting p: its targets too
			queue = append(queue, p)
		}
	}
	slices.SortFunc(queue, func(a, b manifest.PackID) int { return bytes.Compare(a[:], b[:]) })
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		f, err := fw.Load(ctx, st, p)
		if errors.Is(err, store.ErrNotFound) {
			if _, present := ls.packs[p]; !present {
				rep.Missing++
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("mark: pack %s is gone: %w", p, err)
		}
		rep.Forwarded++
		for _, e := range f.Entries {
			t := e.To.Pack
			if _, ok := mk.packs[t]; ok {
				continue
			}
			mk.packs[t] = struct{}{}
			_, present := ls.packs[t]
			_, forwarded := ls.forwards[t]
			if !present || forwarded {
				queue = append(queue, t)
			}
		}
	}
	return nil
}

// candidates returns the objects to delete: packs, forward records and
// chunk objects nothing marked, with a ModTime before the cutoff. A
// forward record is kept while its pack is marked.
func candidates(ls listing, mk marks, rep *Report) []store.ObjectInfo {
	var cands []store.ObjectInfo
	consider := func(o store.ObjectInfo, marked bool) {
		switch {
		case marked:
		case !gcsafety.Expired(o.ModTime, rep.Cutoff):
			rep.KeptYoung++
		default:
			cands = append(cands, o)
		}
	}
	for p, o := range ls.packs {
		_, ok := mk.packs[p]
		consider(o, ok)
	}
	for p, o := range ls.forwards {
		_, ok := mk.packs[p]
		consider(o, ok)
	}
	found := 0
	for _, o := range ls.objects {
		id, _ := chunker.ParseID(strings.TrimPrefix(o.Key, chunksPrefix))
		_, ok := mk.chunks[id]
		if ok {
			found++
		}
		consider(o, ok)
	}
	rep.Missing += len(mk.chunks) - found
	slices.SortFunc(cands, func(a, b store.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return cands
}

// sweep deletes the candidates, at most parallel at once, each after a
// Stat confirming it is still older than the cutoff.
func sweep(ctx context.Context, st store.Store, cands []store.ObjectInfo, parallel int, rep *Report) error {
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, c := range cands {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			info, err := st.Stat(gctx, c.Key)
			if errors.Is(err, store.ErrNotFound) {
				return nil // deleted meanwhile (another gc)
			}
			if err != nil {
				return fmt.Errorf("sweep: stat chunk %s: %w", c.Key, err)
			}
			if !gcsafety.Expired(info.ModTime, rep.Cutoff) {
				mu.Lock()
				rep.KeptYoung++ // rewritten since the listing: a saver uses it again
				mu.Unlock()
				return nil
			}
			if err := st.Delete(gctx, c.Key); err != nil {
				return fmt.Errorf("sweep: delete chunk %s: %w", c.Key, err)
			}
			mu.Lock()
			rep.Deleted++
			rep.BytesFreed += info.Size
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}
