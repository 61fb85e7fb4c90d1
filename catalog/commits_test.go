package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// savesWithGenerations stores one save per generation entry, a minute apart.
func savesWithGenerations(t *testing.T, st *countingStore, gens ...uint64) []*manifest.Manifest {
	t.Helper()
	base := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	var out []*manifest.Manifest
	for i, g := range gens {
		m := sampleManifest()
		at := base.Add(time.Duration(i) * time.Minute)
		m.Session, m.ID, m.Time, m.Reason = "s", manifest.NewID(at), at, "interval"
		m.Writer.Generation = g
		if err := Put(context.Background(), st, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func putClaim(t *testing.T, st *countingStore, json string) {
	t.Helper()
	if err := st.Put(context.Background(), manifest.ClaimKey("s"), []byte(json)); err != nil {
		t.Fatal(err)
	}
}

// The catalog reads only the saves the writer claim committed
// (claim.Commits, whose rule claim's tests check): readers skip a save
// still in flight and one a fenced writer stored; gc's ListAll keeps all.
func TestCatalogSkipsFencedAndInFlightSaves(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	// generation 1 committed ms[0..1]; ms[2] was stored by gen 1 after it
	// lost the claim; generation 2 committed ms[3]; ms[4] is in flight.
	ms := savesWithGenerations(t, st, 1, 1, 1, 2, 2)
	putClaim(t, st, fmt.Sprintf(`{"format_version": 1, "generation": 2, "last_save": %q,
		"holder": {"id": "b"}, "history": [
			{"generation": 1, "last_save": %q}, {"generation": 2}]}`, ms[3].ID, ms[1].ID))
	want := []bool{true, true, false, true, false}
	newest, err := Newest(ctx, st, "s")
	if err != nil || newest.ID != ms[3].ID {
		t.Fatalf("newest: %v %v, want %s", newest, err, ms[3].ID)
	}
	at, err := At(ctx, st, "s", ms[2].Time)
	if err != nil || at.ID != ms[1].ID {
		t.Fatalf("at the fenced save's time: %v %v, want %s", at, err, ms[1].ID)
	}
	all, err := List(ctx, st, "s")
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %d saves, %v", len(all), err)
	}
	if every, err := ListAll(ctx, st, "s"); err != nil || len(every) != 5 {
		t.Fatalf("list all (what gc keeps): %d manifests, %v", len(every), err)
	}
	checkLoadCommitted(t, st, ms, want)
}

// checkLoadCommitted loads each of ms by id: the committed ones load, the
// others, and an id without a manifest, are ErrNoSuchSave naming the id and
// the session.
func checkLoadCommitted(t *testing.T, st *countingStore, ms []*manifest.Manifest, committed []bool) {
	t.Helper()
	ctx := context.Background()
	absent := manifest.NewID(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ids := []string{absent}
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	for i, id := range ids {
		ok := i > 0 && committed[i-1]
		m, err := LoadCommitted(ctx, st, "s", id)
		switch {
		case ok && (err != nil || m.ID != id):
			t.Errorf("LoadCommitted(%s) of a committed save: %v, %v", id, m, err)
		case !ok && (!errors.Is(err, manifest.ErrNoSuchSave) || !strings.Contains(err.Error(), id) ||
			!strings.Contains(err.Error(), "session s")):
			t.Errorf("LoadCommitted(%s), not a committed save: %v, want ErrNoSuchSave naming the id and session s", id, err)
		}
	}
	if _, err := LoadCommitted(ctx, st, "s", "not-an-id"); !errors.Is(err, manifest.ErrBadID) {
		t.Errorf("LoadCommitted of a malformed id: %v, want ErrBadID", err)
	}
}

// Without a readable claim every stored save is listed.
func TestCatalogListsEverythingWithoutAClaim(t *testing.T) {
	ctx := context.Background()
	for name, claim := range map[string]string{
		"no claim":         "",
		"unreadable claim": "{not json",
		"generation 0":     `{"generation": 0}`,
	} {
		st := newStore(t)
		ms := savesWithGenerations(t, st, 0, 3, 7)
		if claim != "" {
			putClaim(t, st, claim)
		}
		all, err := List(ctx, st, "s")
		if err != nil || len(all) != len(ms) {
			t.Errorf("%s: list: %d saves, %v; want %d", name, len(all), err, len(ms))
		}
		if newest, err := Newest(ctx, st, "s"); err != nil || newest.ID != ms[2].ID {
			t.Errorf("%s: newest: %v %v, want %s", name, newest, err, ms[2].ID)
		}
		checkLoadCommitted(t, st, ms, []bool{true, true, true})
	}
}

// claimAfterList holds the claim's read until a listing has begun.
type claimAfterList struct {
	*countingStore
	listed chan struct{}
	once   sync.Once
}

func (c *claimAfterList) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	c.once.Do(func() { close(c.listed) })
	return c.countingStore.List(ctx, opts, fn)
}

func (c *claimAfterList) Get(ctx context.Context, key string) ([]byte, error) {
	if key == manifest.ClaimKey("s") {
		select {
		case <-c.listed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.countingStore.Get(ctx, key)
}

// Newest and At read the claim while they list (two round trips, not
// three), and still judge the listed saves by it; a claim that cannot be
// read fails them.
func TestNewestReadsTheClaimWhileItLists(t *testing.T) {
	st := newStore(t)
	ms := savesWithGenerations(t, st, 1, 1, 1)
	putClaim(t, st, fmt.Sprintf(`{"format_version": 1, "generation": 1, "last_save": %q, "holder": {"id": "a"}}`, ms[1].ID))
	for _, find := range []func(context.Context, store.Store) (*manifest.Manifest, error){
		func(ctx context.Context, st store.Store) (*manifest.Manifest, error) { return Newest(ctx, st, "s") },
		func(ctx context.Context, st store.Store) (*manifest.Manifest, error) {
			return At(ctx, st, "s", ms[2].Time)
		},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := find(ctx, &claimAfterList{countingStore: st, listed: make(chan struct{})})
		cancel()
		if err != nil || m.ID != ms[1].ID {
			t.Fatalf("with the claim read only once a listing began: %v %v, want %s (in flight: %s)", m, err, ms[1].ID, ms[2].ID)
		}
	}
	bad := &failingGets{countingStore: st, key: manifest.ClaimKey("s")}
	if _, err := Newest(context.Background(), bad, "s"); !errors.Is(err, errUnreadable) {
		t.Fatalf("with an unreadable claim: %v", err)
	}
}

var errUnreadable = errors.New("unreadable")

// failingGets fails every Get of key.
type failingGets struct {
	*countingStore
	key string
}

func (f *failingGets) Get(ctx context.Context, key string) ([]byte, error) {
	if key == f.key {
		return nil, errUnreadable
	}
	return f.countingStore.Get(ctx, key)
}

// cancelAfterManifest lets the claim be read, then cancels the caller's
// context as soon as a manifest was read (a Ctrl-C while Newest runs).
type cancelAfterManifest struct {
	*countingStore
	claimRead chan struct{}
	cancel    context.CancelFunc
}

func (c *cancelAfterManifest) Get(ctx context.Context, key string) ([]byte, error) {
	if key == manifest.ClaimKey("s") {
		defer close(c.claimRead)
		return c.countingStore.Get(ctx, key)
	}
	b, err := c.countingStore.Get(ctx, key)
	<-c.claimRead
	c.cancel()
	return b, err
}

// A Newest cancelled while it reads finds the save or reports the
// cancellation, never "no saves" (which a server starting would take for
// an empty session). Which of the two depends on the scheduler: many
// runs.
func TestNewestCancelledIsNeverNoSaves(t *testing.T) {
	st := newStore(t)
	savesWithGenerations(t, st, 0, 0)
	for range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		m, err := Newest(ctx, &cancelAfterManifest{countingStore: st, claimRead: make(chan struct{}), cancel: cancel}, "s")
		cancel()
		if errors.Is(err, manifest.ErrNoSaves) || (err == nil && m == nil) {
			t.Fatalf("a cancelled Newest: %v %v", m, err)
		}
	}
}
