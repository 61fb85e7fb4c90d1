package gc_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/gc"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

var quiet = slog.New(slog.DiscardHandler)

// pauseStore holds the saver at its commit point: once armed, the next
// write of a manifest (a key under sessions/<s>/saves/, by Put or PutIf)
// closes reached and waits for release before it goes through. By then the
// saver has made every decision about its chunks (Stat, known set, Put).
type pauseStore struct {
	store.Store
	armed   atomic.Bool
	reached chan struct{}
	release chan struct{}
}

func newPauseStore(inner store.Store) *pauseStore {
	return &pauseStore{Store: inner, reached: make(chan struct{}), release: make(chan struct{})}
}

func (p *pauseStore) hold(key string) {
	if strings.HasPrefix(key, "sessions/") && strings.Contains(key, "/saves/") && p.armed.CompareAndSwap(true, false) {
		close(p.reached)
		<-p.release
	}
}

func (p *pauseStore) Put(ctx context.Context, key string, data []byte) error {
	p.hold(key)
	return p.Store.Put(ctx, key, data)
}

func (p *pauseStore) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	p.hold(key)
	return p.Store.PutIf(ctx, key, data, cond)
}

// saveAcrossGC runs sv.Save and, while the save waits at its commit point,
// a whole gc run with the default grace over the same store. It returns the
// committed save's manifest.
func saveAcrossGC(t *testing.T, st *file.Store, ps *pauseStore, sv *replicate.Saver, sessionName string) (*manifest.Manifest, gc.Report) {
	t.Helper()
	ctx := context.Background()
	type saved struct {
		r   replicate.Result
		err error
	}
	done := make(chan saved, 1)
	ps.armed.Store(true)
	go func() {
		r, err := sv.Save(ctx, "api")
		done <- saved{r, err}
	}()
	select {
	case <-ps.reached:
	case s := <-done:
		t.Fatalf("save ended before its commit: %+v %v", s.r, s.err)
	}
	rep, gcErr := gc.Run(ctx, st, gc.Options{Grace: gcsafety.DefaultGrace})
	close(ps.release)
	s := <-done
	if gcErr != nil {
		t.Fatalf("gc during the save: %v", gcErr)
	}
	if s.err != nil {
		t.Fatalf("save: %v", s.err)
	}
	m, err := catalog.Load(ctx, st, sessionName, s.r.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m, rep
}

// assertWhole fails unless every chunk of m is in the store and m restores.
func assertWhole(t *testing.T, st store.Store, m *manifest.Manifest, rep gc.Report) {
	t.Helper()
	if missing := missingChunks(t, st, m); len(missing) > 0 {
		t.Fatalf("gc deleted %d of the chunks the save committed meanwhile relies on (e.g. %s); gc report %+v.\n"+
			"The saver referenced packs no manifest gc read names (see the argument in gc/doc.go).", len(missing), missing[0], rep)
	}
	if _, _, _, err := restore.Fetch(context.Background(), st, m, 4, nil); err != nil {
		t.Fatalf("committed save does not restore: %v", err)
	}
}

// TestGCDuringSaveOfOrphanedContent: a new session's first save finds its
// chunks already in the store (left by a save whose manifest was pruned two
// hours ago), and gc runs while the save is between its Stat calls and its
// manifest Put. The saver must not lose those chunks to gc.
func TestGCDuringSaveOfOrphanedContent(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	old := session.New()
	putNodes(t, old, 0, 40, 3000, 1)
	r1, err := replicate.New(old, replicate.Config{Store: st, Session: "old", Logger: quiet}).Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if err := catalog.Delete(ctx, st, "old", r1.ID); err != nil { // pruned
		t.Fatal(err)
	}
	ageChunks(t, st, time.Now().Add(-2*time.Hour))

	ps := newPauseStore(st)
	same := session.FromGraph(old.Snapshot()) // another host, same content
	m, rep := saveAcrossGC(t, st, ps, replicate.New(same, replicate.Config{Store: ps, Session: "new", Logger: quiet}), "new")
	assertWhole(t, st, m, rep)
}

// TestGCDuringSaveReusingTheNewestSave: a saver's next save references
// the packs of its last committed save, two hours old, and the older saves
// are pruned (retention keeps the newest); gc runs while the next save (one
// node changed) waits at its commit point. The reused packs must survive,
// and the save's own new pack, unreferenced while gc runs, too.
func TestGCDuringSaveReusingTheNewestSave(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	ps := newPauseStore(st)
	var offset atomic.Int64 // the saver's clock runs this far behind: "two hours ago"
	offset.Store(int64(-2 * time.Hour))
	s := session.New()
	putNodes(t, s, 0, 40, 3000, 2)
	sv := replicate.New(s, replicate.Config{Store: ps, Session: "s", Clock: offsetClock{clock.Real(), &offset}, Logger: quiet})
	r1, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	putNodes(t, s, 5, 1, 3000, 98)
	if _, err := sv.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	ageChunks(t, st, time.Now().Add(-2*time.Hour))
	if err := catalog.Delete(ctx, st, "s", r1.ID); err != nil { // pruned; the newest stays
		t.Fatal(err)
	}
	offset.Store(0) // two hours later
	putNodes(t, s, 0, 1, 3000, 99)
	m, rep := saveAcrossGC(t, st, ps, sv, "s")
	assertWhole(t, st, m, rep)
	if m.ChunksUploaded >= m.ChunksTotal/2 || m.PacksUploaded != 1 {
		t.Fatalf("one changed node: the save uploaded %d of %d chunks in %d packs", m.ChunksUploaded, m.ChunksTotal, m.PacksUploaded)
	}
	if rep.KeptYoung < 1 {
		t.Fatalf("gc did not see the save's own pack as young: %+v", rep)
	}
}

// vanishingBase deletes the manifest at key right after the second listing
// of its session's saves (the first finds the newest committed save, the
// second lists them all), as a prune that runs once a newer save commits
// would: gc has listed the save but cannot read it.
type vanishingBase struct {
	store.Store
	key   string
	lists atomic.Int32
}

func (v *vanishingBase) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	err := v.Store.List(ctx, opts, fn)
	if err == nil && strings.HasSuffix(opts.Prefix, "/saves/") && v.lists.Add(1) == 2 {
		err = v.Store.Delete(ctx, v.key)
	}
	return err
}

// A save gc listed but can no longer read (pruned between the two) may be
// the base a save in flight relies on: gc aborts rather than deleting its
// packs unmarked.
func TestGCAbortsWhenAListedSaveVanishes(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	s := session.New()
	putNodes(t, s, 0, 10, 3000, 4)
	r, err := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: quiet}).Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	ageChunks(t, st, time.Now().Add(-2*time.Hour))
	key, err := manifest.Key("s", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := gc.Run(ctx, &vanishingBase{Store: st, key: key}, gc.Options{Grace: gcsafety.DefaultGrace})
	if !errors.Is(err, gc.ErrAborted) || !errors.Is(err, store.ErrNotFound) || rep.Deleted != 0 {
		t.Fatalf("gc with a listed save gone: %v, %+v", err, rep)
	}
}

// TestGCDuringRollbackKeepsPinnedPacks: a server commits a rollback to an
// older save R, reusing R's two-hour-old packs (a rollback costs a
// manifest, not an upload). R is pruned after the saver pinned those packs
// in its writer claim and found R still there, and gc runs while the
// rollback waits at its commit point: gc sees neither R nor the rollback's
// manifest, and must keep the packs because the claim pins them.
func TestGCDuringRollbackKeepsPinnedPacks(t *testing.T) {
	ctx := context.Background()
	st := newFileStore(t)
	s := session.New()
	putNodes(t, s, 0, 40, 3000, 5)
	first := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: quiet})
	r1, err := first.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	old := s.Snapshot()
	putNodes(t, s, 0, 40, 3000, 77) // every node changed: the newest save shares nothing with R
	if _, err := first.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	ageChunks(t, st, time.Now().Add(-2*time.Hour))
	rm, err := catalog.Load(ctx, st, "s", r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	newest, err := catalog.Newest(ctx, st, "s")
	if err != nil {
		t.Fatal(err)
	}
	ps := newPauseStore(st)
	wc, err := claim.Acquire(ctx, ps, "s", claim.Options{Host: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Abandon()
	rolled := session.FromGraph(old)
	sv := replicate.New(rolled, replicate.Config{Store: ps, Session: "s", Logger: quiet,
		Fence: wc.Fence, Pin: wc.Pin, Commit: wc.Commit})
	sv.Prime(rm)
	sv.SetLast(newest)
	sv.ForceNext()
	type saved struct {
		r   replicate.Result
		err error
	}
	done := make(chan saved, 1)
	ps.armed.Store(true)
	go func() {
		r, err := sv.Save(ctx, "restored:"+rm.ID)
		done <- saved{r, err}
	}()
	select {
	case <-ps.reached:
	case s := <-done:
		t.Fatalf("save ended before its commit: %+v %v", s.r, s.err)
	}
	if err := catalog.Delete(ctx, st, "s", rm.ID); err != nil { // pruned meanwhile
		t.Fatal(err)
	}
	rep, gcErr := gc.Run(ctx, st, gc.Options{Grace: gcsafety.DefaultGrace})
	close(ps.release)
	res := <-done
	if gcErr != nil || res.err != nil {
		t.Fatalf("gc %v, save %v", gcErr, res.err)
	}
	m, err := catalog.Load(ctx, st, "s", res.r.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertWhole(t, st, m, rep)
	if res.r.BytesUploaded != 0 || rep.Pinned == 0 {
		t.Fatalf("the rollback uploaded %d bytes (want 0: R's packs reused); gc saw %d pinned packs", res.r.BytesUploaded, rep.Pinned)
	}
}

// offsetClock is the wall clock moved by offset.
type offsetClock struct {
	clock.Clock
	offset *atomic.Int64
}

func (c offsetClock) Now() time.Time                  { return c.Clock.Now().Add(time.Duration(c.offset.Load())) }
func (c offsetClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
