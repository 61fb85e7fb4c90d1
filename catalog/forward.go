package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"golang.org/x/sync/errgroup"
)

// MaxForwards is the longest chain of forward records a read follows: a
// chunk moved again after its pack was repacked is found through the
// record of each pack it left.
const MaxForwards = 16

// Forwards reads the forward records of deleted packs (manifest.Forward)
// and keeps them for the rest of one read of the store, so that each is
// read once however many chunks it moves. A record that is absent or does
// not decode is kept as that answer; another failure is not kept, and the
// next Load tries again. Safe for concurrent use.
type Forwards struct {
	mu sync.Mutex
	m  map[manifest.PackID]*forwardSlot

	// gone lists the packs with a record, from one listing of
	// chunks/f/, taken after the first pack found gone (or before the
	// first read, ListGone); listings failed so far are counted, and
	// the reads stop asking after maxListFailures.
	listMu       sync.Mutex
	listFailures int
	gone         map[manifest.PackID]bool
	// times are the records' ModTimes as listed, and bundle the newest
	// forward bundle listed (manifest.BundleIndex): a record listed as
	// older than the bundle is read from it, with the others it holds.
	times  map[manifest.PackID]time.Time
	bundle store.ObjectInfo
	// recordsOnly: never from a bundle (gc reads the records themselves);
	// twin is the set that reads them so for fs (records).
	recordsOnly bool
	twin        *Forwards

	bundleMu     sync.Mutex
	bundleIdx    *manifest.BundleIndex
	bundleAll    []byte // the whole bundle, if read whole
	bundleFailed bool
}

// maxListFailures is how many failed listings of chunks/f/ a read takes
// before it goes on without one.
const maxListFailures = 2

type forwardSlot struct {
	done chan struct{} // closed once f and err are set
	f    *manifest.Forward
	err  error
}

// NewForwards returns an empty set of records.
func NewForwards() *Forwards { return &Forwards{m: map[manifest.PackID]*forwardSlot{}} }

// Load returns pack p's forward record, reading it the first time. A pack
// without one is an error wrapping store.ErrNotFound.
func (fs *Forwards) Load(ctx context.Context, st store.Store, p manifest.PackID) (*manifest.Forward, error) {
	fs.mu.Lock()
	s := fs.m[p]
	if s != nil {
		fs.mu.Unlock()
		select {
		case <-s.done:
			if isContextErr(s.err) && ctx.Err() == nil {
				return fs.Load(ctx, st, p) // the reader that read it gave up; this one has not
			}
			return s.f, s.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s = &forwardSlot{done: make(chan struct{})}
	fs.m[p] = s
	fs.mu.Unlock()
	key := manifest.ForwardKey(p)
	b, err := st.Get(ctx, key)
	var f *manifest.Forward
	if err == nil {
		f, err = manifest.DecodeForward(b, p)
	} else {
		err = fmt.Errorf("read forward record %s: %w", key, err)
	}
	fs.mu.Lock()
	s.f, s.err = f, err
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, manifest.ErrBadForward) && fs.m[p] == s {
		delete(fs.m, p) // a passing failure: ask again next time
	}
	close(s.done)
	fs.mu.Unlock()
	return f, err
}

// Set records f as pack f.Pack's record (gc, having rewritten it).
func (fs *Forwards) Set(f *manifest.Forward) {
	s := &forwardSlot{done: make(chan struct{}), f: f}
	close(s.done)
	fs.mu.Lock()
	fs.m[f.Pack] = s
	fs.mu.Unlock()
}

// Loaded returns the records read so far, by pack.
func (fs *Forwards) Loaded() map[manifest.PackID]*manifest.Forward {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make(map[manifest.PackID]*manifest.Forward, len(fs.m))
	for p, s := range fs.m {
		select {
		case <-s.done:
			if s.err == nil {
				out[p] = s.f
			}
		default:
		}
	}
	return out
}

// listGone lists chunks/f/ once, so that the other packs gone are known
// without asking for each: the read meets one missing pack, not one per
// pack and per round. A failed listing is only a lost shortcut.
func (fs *Forwards) listGone(ctx context.Context, st store.Store) {
	fs.listMu.Lock()
	defer fs.listMu.Unlock()
	fs.mu.Lock()
	listed := fs.gone != nil
	fs.mu.Unlock()
	if listed || fs.listFailures >= maxListFailures {
		return
	}
	gone := map[manifest.PackID]bool{}
	times := map[manifest.PackID]time.Time{}
	var bundle store.ObjectInfo
	err := st.List(ctx, store.ListOptions{Prefix: manifest.ForwardsPrefix}, func(o store.ObjectInfo) error {
		if p, ok := manifest.ParseForwardKey(o.Key); ok {
			gone[p] = true
			times[p] = o.ModTime
		} else if manifest.IsBundleKey(o.Key) && (bundle.Key == "" || o.ModTime.After(bundle.ModTime)) {
			bundle = o
		}
		return nil
	})
	if err != nil {
		fs.listFailures++
		return
	}
	fs.mu.Lock()
	fs.gone, fs.times, fs.bundle = gone, times, bundle
	fs.mu.Unlock()
}

// RecordsOnly makes fs read every record itself, never a bundled copy.
func (fs *Forwards) RecordsOnly() {
	fs.mu.Lock()
	fs.recordsOnly = true
	fs.mu.Unlock()
}

// ListGone lists the forward records in the store now, before any read
// finds a pack gone: a reader of a save that may name repacked packs (one
// that is not its session's newest) then asks for no pack that is gone.
// A failed listing is only a lost shortcut: the read lists again after
// its first missing pack, as it does without ListGone. A pack repacked
// after the listing is found gone by its read, as without one.
func (fs *Forwards) ListGone(ctx context.Context, st store.Store) { fs.listGone(ctx, st) }

// Listed reports whether the listing of chunks/f/ (ListGone, if it was
// taken) holds a record for pack p.
func (fs *Forwards) Listed(p manifest.PackID) bool { return fs.listedGone(p) }

// listedGone reports whether the listing of chunks/f/ holds a record for
// pack p.
func (fs *Forwards) listedGone(p manifest.PackID) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.gone[p]
}

// preload reads, parallel at a time, the records of the packs refs name
// that the listing says are gone and that are not read yet, so that skip
// moves those refs before they are planned.
func (fs *Forwards) preload(ctx context.Context, st store.Store, refs []Ref, parallel int) {
	packs := make([]manifest.PackID, 0, len(refs))
	for _, r := range refs {
		packs = append(packs, r.Loc.Pack)
	}
	fs.preloadPacks(ctx, st, packs, parallel)
}

// preloadPacks reads the records of those of packs that the listing says
// are gone and that are not read yet: from the bundle those it holds a
// copy of as they are, the others one GET each.
func (fs *Forwards) preloadPacks(ctx context.Context, st store.Store, packs []manifest.PackID, parallel int) {
	todo := fs.unread(packs)
	if len(todo) == 0 {
		return
	}
	fs.fromBundle(ctx, st, todo, parallel)
	if todo = fs.unread(todo); len(todo) == 0 {
		return
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, parallel))
	for _, p := range todo {
		g.Go(func() error {
			_, _ = fs.Load(gctx, st, p) // a failure is met again by the read
			return nil
		})
	}
	_ = g.Wait()
}

// unread returns, each once, those of packs the listing says are gone
// whose records are not read (nor being read).
func (fs *Forwards) unread(packs []manifest.PackID) []manifest.PackID {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var todo []manifest.PackID
	seen := map[manifest.PackID]bool{}
	for _, p := range packs {
		if fs.gone[p] && !seen[p] && fs.m[p] == nil {
			seen[p] = true
			todo = append(todo, p)
		}
	}
	return todo
}

// known returns pack p's record if it was read: the pack is gone.
func (fs *Forwards) known(p manifest.PackID) *manifest.Forward {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if s := fs.m[p]; s != nil {
		select {
		case <-s.done:
			if s.err == nil {
				return s.f
			}
		default: // being read
		}
	}
	return nil
}

// skip returns r moved through the records already read, so that a pack
// known to be gone is not asked for again.
func (fs *Forwards) skip(r Ref) Ref {
	for range MaxForwards {
		if !r.Loc.InPack() {
			return r
		}
		f := fs.known(r.Loc.Pack)
		if f == nil {
			return r
		}
		to, ok := f.Lookup(r.ID)
		if !ok {
			return r // the read fails and says so
		}
		r.Loc = to
	}
	return r
}

// forward resolves the refs of a read of pack p, which is not in the
// store, through p's forward record. moved[k] is the new ref of
// rd.refs[k]; bad[k], if set, is why that chunk cannot be found. err is
// set when the record itself cannot be had: the pack is then missing.
func (fs *Forwards) forward(ctx context.Context, st store.Store, p manifest.PackID, refs []Ref, idx []int) (moved []Ref, bad []error, err error) {
	f, err := fs.Load(ctx, st, p)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("%w: %s is not in the store, nor a forward record for it", ErrMissing, manifest.PackKey(p))
		}
		return nil, nil, err
	}
	moved = make([]Ref, len(idx))
	bad = make([]error, len(idx))
	for k, i := range idx {
		to, ok := f.Lookup(refs[i].ID)
		if !ok {
			bad[k] = fmt.Errorf("%w: pack %s was repacked, and its forward record does not list the chunk", ErrMissing, p)
			continue
		}
		moved[k] = Ref{ID: refs[i].ID, Loc: to}
	}
	return moved, bad, nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
