package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/mem"
)

var admin = session.Actor{User: "root", Admin: true}

// flaky wraps a store: while down, every call fails; it counts puts and
// stats.
type flaky struct {
	store.Store
	down  atomic.Bool
	puts  atomic.Int64
	stats atomic.Int64
}

var errDown = errors.New("store is down")

func (f *flaky) Put(ctx context.Context, key string, data []byte) error {
	if f.down.Load() {
		return errDown
	}
	f.puts.Add(1)
	return f.Store.Put(ctx, key, data)
}

func (f *flaky) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if f.down.Load() {
		return store.ObjectInfo{}, errDown
	}
	f.stats.Add(1)
	return f.Store.Stat(ctx, key)
}

// newStore is an in-memory store (the saver's tests need no disk).
func newStore(t testing.TB) *flaky {
	t.Helper()
	return &flaky{Store: mem.New(mem.Options{})}
}

func fill(t testing.TB, s *session.Session, n, size int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		if _, err := s.Put(admin, nodeID(i), session.NodeInput{Type: "object", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
}

func nodeID(i int) string { return "node-" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) }

func newSaver(t *testing.T, s *session.Session, st store.Store) (*Saver, string) {
	t.Helper()
	dir := t.TempDir()
	return New(s, Config{Store: st, Session: "test", DataDir: dir, Interval: time.Hour,
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}), dir
}

func TestSaveRestoresAndUnchangedWritesNothing(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 50, 3000, 1)
	sv, dir := newSaver(t, s, st)
	var saved []Result
	sv.cfg.OnSaved = func(r Result) { saved = append(saved, r) }
	var planned []int64
	sv.cfg.OnPlan = func(n int64) { planned = append(planned, n) }
	ctx := context.Background()
	r1, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if len(planned) != 1 || planned[0] != r1.BytesTotal {
		t.Errorf("OnPlan told %v, want the graph's %d bytes once", planned, r1.BytesTotal)
	}
	if r1.Unchanged || r1.NodeCount != 50 || r1.BytesUploaded == 0 || r1.ChunksUploaded == 0 {
		t.Fatalf("first save: %+v", r1)
	}
	m, err := catalog.Newest(ctx, st, "test")
	if err != nil || m.ID != r1.ID || m.Reason != "api" {
		t.Fatalf("newest manifest %+v %v", m, err)
	}
	graph, _, _, err := restore.Fetch(ctx, st, m, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(graph, session.Encode(s.Snapshot())) {
		t.Fatal("restored graph differs from the saved session")
	}
	local, err := datadir.Load(dir)
	if err != nil || local.Dirty || local.Meta.SaveID != r1.ID {
		t.Fatalf("data dir after save: %+v %v", local, err)
	}
	puts := st.puts.Load()
	r2, err := sv.Save(ctx, "api")
	if err != nil || !r2.Unchanged || r2.ID != r1.ID || r2.BytesUploaded != 0 || st.puts.Load() != puts {
		t.Fatalf("no-op save: %+v %v, puts %d→%d", r2, err, puts, st.puts.Load())
	}
	// presence is not a change; putting back the same content is caught by hash
	if err := s.Join("ann"); err != nil {
		t.Fatal(err)
	}
	s.Leave("ann")
	if r, _ := sv.Save(ctx, "user_disconnect:ann"); !r.Unchanged {
		t.Fatalf("presence-only save wrote: %+v", r)
	}
	if len(saved) != 1 || saved[0].ID != r1.ID {
		t.Fatalf("OnSaved calls: %+v", saved)
	}
}

func TestSaveUploadsOnlyWhatChanged(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 200, 5000, 2)
	sv, _ := newSaver(t, s, st)
	ctx := context.Background()
	full, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 2, 5000, 3) // replaces node-aa and node-ab with new random data
	r, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if r.BytesUploaded > 3*2*5000 || r.ChunksUploaded > 8 {
		t.Fatalf("2 of 200 nodes changed (10 KB) but the save uploaded %d bytes in %d chunks (full save: %d bytes)",
			r.BytesUploaded, r.ChunksUploaded, full.BytesUploaded)
	}
	if r.BytesUploaded < 2*5000 {
		t.Fatalf("save uploaded %d bytes, less than the changed data", r.BytesUploaded)
	}
}

func TestForceNextCommitsUnchangedContent(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 3, 100, 4)
	sv, _ := newSaver(t, s, st)
	ctx := context.Background()
	r1, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	sv.ForceNext()
	r2, err := sv.Save(ctx, "restored:"+r1.ID)
	if err != nil || r2.Unchanged || r2.ID == r1.ID || r2.ChunksUploaded != 0 {
		t.Fatalf("forced save: %+v %v", r2, err)
	}
	if !r2.Time.After(r1.Time) {
		t.Fatalf("save times not increasing: %v then %v", r1.Time, r2.Time)
	}
	if r3, _ := sv.Save(ctx, "api"); !r3.Unchanged {
		t.Fatal("force stayed on after a successful save")
	}
}

func TestPrimeSkipsUploadOfKnownContent(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 20, 1000, 5)
	sv, _ := newSaver(t, s, st)
	ctx := context.Background()
	if _, err := sv.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	m, _ := catalog.Newest(ctx, st, "test")
	_, g, _, err := restore.Fetch(ctx, st, m, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2 := session.FromGraph(g)
	sv2, _ := newSaver(t, s2, st)
	sv2.Prime(m)
	if r, err := sv2.Save(ctx, "api"); err != nil || !r.Unchanged || r.ID != m.ID {
		t.Fatalf("save right after prime: %+v %v", r, err)
	}
	sv2.MarkDirty()
	if r, err := sv2.Save(ctx, "api"); err != nil || !r.Unchanged {
		t.Fatalf("dirty but identical content: %+v %v", r, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Run saves an interval after a change and retries a failed save after
// its backoff: both timers run on the saver's clock, which the test moves.
func TestRunSavesAfterIntervalAndRetriesFailures(t *testing.T) {
	st := newStore(t)
	s := session.New()
	sv, dir := newSaver(t, s, st)
	fake := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	sv.cfg.Clock = fake
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// fire advances the clock past the timer Run waits on.
	fire := func(what string, d time.Duration) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := fake.BlockUntilContext(wctx, 1); err != nil {
			t.Fatalf("Run armed no timer for %s: %v", what, err)
		}
		fake.Advance(d)
	}

	fill(t, s, 1, 10, 6)
	fire("the interval", sv.cfg.Interval)
	waitFor(t, "an interval save", func() bool { return sv.Status().LastSave != nil })
	if got := sv.Status().LastSave.Reason; got != "interval" {
		t.Fatalf("reason %q", got)
	}

	st.down.Store(true)
	fill(t, s, 2, 10, 7)
	fire("the interval", sv.cfg.Interval)
	waitFor(t, "last_error", func() bool { return sv.Status().LastError != "" })
	// the local copy holds the change even though the store is down
	if l, err := datadir.Load(dir); err != nil || !l.Dirty || l.Meta.NodeCount != 2 {
		t.Fatalf("data dir during outage: %+v %v", l, err)
	}
	first := sv.Status().LastSave.ID
	st.down.Store(false)
	fire("the retry", sv.cfg.RetryMax)
	waitFor(t, "a retried save", func() bool {
		stt := sv.Status()
		return stt.LastError == "" && stt.LastSave.ID != first
	})
	m, err := catalog.Newest(context.Background(), st, "test")
	if err != nil || m.NodeCount != 2 {
		t.Fatalf("after recovery: %+v %v", m, err)
	}

	sv.Request("user_disconnect:ann")
	fill(t, s, 3, 10, 8)
	sv.Request("user_disconnect:bob")
	waitFor(t, "a requested save", func() bool { return sv.Status().LastSave.NodeCount == 3 })
}

func TestFenceRecordsGenerationAndStopsSaving(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 2, 10, 9)
	sv, _ := newSaver(t, s, st)
	var fenced atomic.Bool
	sv.cfg.Fence = func(context.Context) (uint64, error) {
		if fenced.Load() {
			return 0, ErrFenced
		}
		return 7, nil
	}
	ctx := context.Background()
	r, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	m, err := catalog.Load(ctx, st, "test", r.ID)
	if err != nil || m.Writer.Generation != 7 {
		t.Fatalf("manifest generation: %+v %v", m, err)
	}
	fenced.Store(true)
	fill(t, s, 3, 10, 10)
	if _, err := sv.Save(ctx, "api"); !errors.Is(err, ErrFenced) {
		t.Fatalf("save after takeover: %v", err)
	}
	fenced.Store(false) // even if the claim looked free again, a fenced saver stays stopped
	puts := st.puts.Load()
	if _, err := sv.Save(ctx, "api"); !errors.Is(err, ErrFenced) || st.puts.Load() != puts {
		t.Fatalf("fenced saver saved again: %v, puts %d→%d", err, puts, st.puts.Load())
	}
	if got := sv.Status().LastError; got == "" {
		t.Fatal("fenced but no last_error")
	}
	if newest, _ := catalog.Newest(ctx, st, "test"); newest.ID != r.ID {
		t.Fatalf("a fenced save was committed: newest %s, want %s", newest.ID, r.ID)
	}
}

func TestMarkFencedStopsSaving(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 1, 10, 11)
	sv, dir := newSaver(t, s, st)
	sv.MarkFenced(fmt.Errorf("claim taken by host-b: %w", ErrFenced))
	if _, err := sv.Save(context.Background(), "api"); !errors.Is(err, ErrFenced) || st.puts.Load() != 0 {
		t.Fatalf("save after MarkFenced: %v, %d puts", err, st.puts.Load())
	}
	// The edits it can no longer save are kept in the data dir, pending,
	// for the next start to set aside.
	if l, err := datadir.Load(dir); err != nil || !l.Dirty || len(l.Graph.Nodes) != 1 {
		t.Fatalf("data dir after a fenced save: %+v, %v; want the edited graph, pending", l, err)
	}
	if !strings.Contains(sv.Status().LastError, "host-b") {
		t.Fatalf("last_error %q", sv.Status().LastError)
	}
}

// A new session that never changed writes nothing, not even a manifest or
// a data dir, until its first change.
func TestNeverChangedSessionWritesNothing(t *testing.T) {
	st := newStore(t)
	s := session.New()
	sv, dir := newSaver(t, s, st)
	r, err := sv.Save(context.Background(), "shutdown")
	if err != nil || !r.Unchanged || r.ID != "" {
		t.Fatalf("save of a never-changed session = %+v, %v; want unchanged with no id", r, err)
	}
	n := 0
	if err := st.List(context.Background(), store.ListOptions{}, func(store.ObjectInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("store holds %d objects (%v), want none", n, err)
	}
	if has, _ := datadir.HasSession(dir); has {
		t.Fatal("data dir written for a never-changed session")
	}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	if r, err := sv.Save(context.Background(), "api"); err != nil || r.Unchanged || r.ID == "" {
		t.Fatalf("save after init = %+v, %v; want a new save", r, err)
	}
}

// The data dir records as its base the save its content came from (Prime,
// then each commit), not merely the newest save it was told of (SetLast):
// a forced diverged copy must not look based on the newest save later.
func TestPendingCopyNamesItsBaseSave(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	s := session.New()
	fill(t, s, 2, 10, 1)
	sv, dir := newSaver(t, s, st)
	base, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 3, 10, 2)
	newer, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	baseM, _ := catalog.Load(ctx, st, "test", base.ID)
	newerM, _ := catalog.Load(ctx, st, "test", newer.ID)

	s2 := session.New()
	fill(t, s2, 2, 10, 1) // base's content, then an edit
	fill(t, s2, 1, 20, 9)
	sv2, _ := newSaver(t, s2, st)
	sv2.cfg.DataDir = dir
	sv2.Prime(baseM)
	sv2.SetLast(newerM)
	sv2.MarkDirty()
	st.down.Store(true)
	if _, err := sv2.Save(ctx, "local_changes"); err == nil {
		t.Fatal("save to a down store succeeded")
	}
	l, err := datadir.Load(dir)
	if err != nil || !l.Dirty || l.Meta.SaveID != base.ID {
		t.Fatalf("pending copy names save %q (dirty %v, %v), want its base %s, not the newest %s", l.Meta.SaveID, l.Dirty, err, base.ID, newer.ID)
	}
}
