package replicate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// gate blocks every Put until opened.
type gate struct {
	store.Store
	open    chan struct{}
	waiting atomic.Int32
}

func (g *gate) Put(ctx context.Context, key string, data []byte) error {
	g.waiting.Add(1)
	<-g.open
	return g.Store.Put(ctx, key, data)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A save stuck on the store shows in Status (saving since, then a warning
// past SlowSave); a save requested meanwhile answers the stuck save once it
// completes (its own id, reason and bytes), or saves again when the session
// changed after that save's snapshot.
func TestStuckSaveAndWaitingSave(t *testing.T) {
	for _, changeMeanwhile := range []bool{false, true} {
		g := &gate{Store: newStore(t), open: make(chan struct{})}
		fake := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
		s := session.New()
		fill(t, s, 3, 100, 1)
		sv, _ := newSaver(t, s, g)
		sv.cfg.Clock = fake
		first := make(chan Result, 1)
		go func() { r, _ := sv.Save(context.Background(), "interval"); first <- r }()
		waitUntil(t, "the first save to block on the store", func() bool { return g.waiting.Load() > 0 })
		st := sv.Status()
		if st.SavingSince == nil || st.Warning != "" {
			t.Fatalf("status of a save just started: %+v", st)
		}
		fake.Advance(31 * time.Second)
		if w := sv.Status().Warning; !strings.Contains(w, "31s") {
			t.Fatalf("warning of a save running for 31 s: %q", w)
		}
		if changeMeanwhile {
			fill(t, s, 1, 50, 9)
		}
		second := make(chan Result, 1)
		go func() { r, _ := sv.Save(context.Background(), "api"); second <- r }()
		waitUntil(t, "the second save to wait for the first", func() bool { return sv.queued.Load() == 1 })
		close(g.open)
		a, b := <-first, <-second
		if st := sv.Status(); st.SavingSince != nil || st.Warning != "" {
			t.Fatalf("status after the saves: %+v", st)
		}
		switch {
		case !changeMeanwhile && (b.ID != a.ID || b.Unchanged || b.Reason != "interval" || b.BytesUploaded != a.BytesUploaded || a.BytesUploaded == 0):
			t.Errorf("save that waited for a save holding its changes: %+v, want that save %+v as it was", b, a)
		case changeMeanwhile && (b.ID == a.ID || b.Unchanged || b.Reason != "api"):
			t.Errorf("save that waited while the session changed again: %+v, want a new api save after %s", b, a.ID)
		}
	}
}

// A data dir that cannot be written does not stop saves: they reach the
// store, and the failure shows in Status until a write works again.
func TestLocalDiskFailureDoesNotBlockSaves(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 2, 50, 1)
	sv, _ := newSaver(t, s, st)
	dir := filepath.Join(t.TempDir(), "data")
	sv.cfg.DataDir = dir
	if err := os.WriteFile(dir, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := sv.Save(context.Background(), "api")
	if err != nil || r.Unchanged {
		t.Fatalf("save with an unwritable data dir: %+v, %v; want it in the store", r, err)
	}
	if m, err := catalog.Newest(context.Background(), st, "test"); err != nil || m.ID != r.ID {
		t.Fatalf("newest save in the store: %v %v, want %s", m, err, r.ID)
	}
	if le := sv.Status().LocalError; le == "" {
		t.Fatal("status does not show the local write failure")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	fill(t, s, 1, 50, 5)
	if _, err := sv.Save(context.Background(), "api"); err != nil {
		t.Fatal(err)
	}
	if le := sv.Status().LocalError; le != "" {
		t.Fatalf("local error after a write that worked: %q", le)
	}
}

// UnsavedSince starts at the first change after a save and ends with the
// save that holds it; a change after a save's snapshot stays unsaved.
func TestUnsavedSince(t *testing.T) {
	st := newStore(t)
	fake := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	s := session.New()
	sv, _ := newSaver(t, s, st)
	sv.cfg.Clock = fake
	if _, ok := sv.UnsavedSince(); ok {
		t.Fatal("a new saver reports unsaved changes")
	}
	fill(t, s, 1, 10, 1)
	sv.noteChange() // what Run does on a change
	first := fake.Now()
	fake.Advance(time.Minute)
	fill(t, s, 1, 10, 2)
	sv.noteChange()
	if since, ok := sv.UnsavedSince(); !ok || !since.Equal(first) {
		t.Fatalf("unsaved since %v %v, want the first change at %v", since, ok, first)
	}
	if _, err := sv.Save(context.Background(), "api"); err != nil {
		t.Fatal(err)
	}
	if since, ok := sv.UnsavedSince(); ok {
		t.Fatalf("unsaved since %v after a save of everything", since)
	}
}
