package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/internal/damage"
	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

// saved returns a store holding two saves of a small session, 1 s apart.
func saved(t *testing.T) (store.Store, []*manifest.Manifest) {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := session.New()
	fake := clock.NewFake(time.Date(2025, 1, 12, 15, 34, 0, 0, time.UTC))
	sv := replicate.New(s, replicate.Config{Store: st, Session: "s", Clock: fake})
	admin := session.Actor{Admin: true}
	for i, data := range []string{"first", "second"} {
		if _, err := s.Put(admin, "n", session.NodeInput{Type: "t", Data: []byte(strings.Repeat(data, 5000))}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(admin, "m"+data, session.NodeInput{Type: "t", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		if _, err := sv.Save(context.Background(), "api"); err != nil {
			t.Fatal(err)
		}
		fake.Advance(time.Duration(i+1) * time.Minute)
	}
	ms, err := catalog.List(context.Background(), st, "s")
	if err != nil || len(ms) != 2 {
		t.Fatalf("saves: %d %v", len(ms), err)
	}
	return st, ms
}

func TestChooseAndRestore(t *testing.T) {
	st, ms := saved(t)
	ctx := context.Background()
	m, err := restore.Choose(ctx, st, "s", ms[0].Time.Add(30*time.Second), false)
	if err != nil || m.ID != ms[0].ID {
		t.Fatalf("choose between saves: %v %v", m, err)
	}
	if m, err = restore.Choose(ctx, st, "s", time.Time{}, true); err != nil || m.ID != ms[1].ID {
		t.Fatalf("choose latest: %v %v", m, err)
	}
	_, err = restore.Choose(ctx, st, "s", ms[0].Time.Add(-time.Second), false)
	if !errors.Is(err, manifest.ErrNoneBefore) || !strings.Contains(err.Error(), ms[0].ID) {
		t.Fatalf("before the first save: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := restore.ToDir(ctx, st, ms[0], dir, false, "file://x", nil); err != nil {
		t.Fatal(err)
	}
	l, err := datadir.Load(dir)
	if err != nil || l.Meta.SaveID != ms[0].ID || !l.Meta.Restored || len(l.Graph.Nodes) != 2 || l.Dirty {
		t.Fatalf("restored dir: %+v %v", l, err)
	}
	if _, err := restore.ToDir(ctx, st, ms[1], dir, false, "", nil); !errors.Is(err, datadir.ErrExists) {
		t.Fatalf("restore over a session: %v", err)
	}
	var last int64
	if _, err := restore.ToDir(ctx, st, ms[1], dir, true, "", func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	if last != ms[1].BytesTotal {
		t.Fatalf("progress ended at %d of %d", last, ms[1].BytesTotal)
	}
}

func TestRestoreChecksEveryChunk(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{damage.Flip, damage.Delete, damage.Garbage} {
		t.Run(how, func(t *testing.T) {
			st, ms := saved(t)
			entries, err := catalog.Entries(ctx, st, ms[1], nil)
			if err != nil {
				t.Fatal(err)
			}
			e := entries[len(entries)/2]
			victim := e.ID.String()
			key, err := damage.Chunk(ctx, st, e, how)
			if err != nil {
				t.Fatal(err)
			}
			if how == damage.Delete {
				victim = key // every chunk of the pack is gone: the pack is named
			}
			dir := filepath.Join(t.TempDir(), "data")
			_, err = restore.ToDir(ctx, st, ms[1], dir, false, "", nil)
			if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), ms[1].ID) {
				t.Fatalf("restore with a damaged chunk: %v (want chunk %s and save %s named)", err, victim, ms[1].ID)
			}
			if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("failed restore left %s behind", dir)
			}
			entries2, _ := os.ReadDir(filepath.Dir(dir))
			if len(entries2) != 0 {
				t.Fatalf("failed restore left files: %v", entries2)
			}
		})
	}
}

// restore --force over a data dir whose acknowledged edits are only in its
// journal sets them aside (folded into a copy), never drops them; and a
// restore refuses a data dir a running server holds.
func TestForceRestoreKeepsJournaledEdits(t *testing.T) {
	st, ms := saved(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := restore.ToDir(ctx, st, ms[1], dir, false, "", nil); err != nil {
		t.Fatal(err)
	}
	l, _ := datadir.Load(dir)
	j, err := journal.Open(dir, l.Meta.JournalLSN+1, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &session.Node{ID: "journaled", Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte("acked"), Version: 1}
	if err := j.Wait(ctx, j.Append(session.Op{Kind: session.OpPut, Node: n})); err != nil {
		t.Fatal(err)
	}
	j.Close()

	unlock, err := datadir.Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.ToDir(ctx, st, ms[0], dir, true, "", nil); !errors.Is(err, datadir.ErrInUse) {
		t.Fatalf("restore into a data dir in use: %v, want ErrInUse", err)
	}
	unlock()

	aside, err := restore.ToDir(ctx, st, ms[0], dir, true, "", nil)
	if err != nil || aside == nil {
		t.Fatalf("forced restore over journaled edits: set aside %v, %v", aside, err)
	}
	_, kept, err := datadir.LoadDiverged(dir, aside.Name)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range kept.Graph.Nodes {
		found = found || (k.ID == "journaled" && string(k.Data) == "acked")
	}
	if !found {
		t.Fatal("the set-aside copy lacks the journaled edit")
	}
	if _, err := os.Stat(filepath.Join(dir, journal.Dir)); !os.IsNotExist(err) {
		t.Fatalf("journal left in the restored data dir: %v", err)
	}
}

// listings records the prefixes a store is listed with, and holds the
// listing of the saves until a pack is read, if packRead is set.
type listings struct {
	store.Store
	mu       sync.Mutex
	prefixes []string
	packRead chan struct{}
	once     sync.Once
}

func (l *listings) List(ctx context.Context, o store.ListOptions, fn func(store.ObjectInfo) error) error {
	l.mu.Lock()
	l.prefixes = append(l.prefixes, o.Prefix)
	l.mu.Unlock()
	if l.packRead != nil && o.Prefix == manifest.SavesPrefix("s") {
		select {
		case <-l.packRead:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return l.Store.List(ctx, o, fn)
}

func (l *listings) Get(ctx context.Context, key string) ([]byte, error) {
	if l.packRead != nil && strings.HasPrefix(key, "chunks/") {
		l.once.Do(func() { close(l.packRead) })
	}
	return l.Store.Get(ctx, key)
}

// Restoring a save by time lists the forward records before reading its
// packs (gc may have repacked them), and looks for the newest save (to
// know whether the restore is a rollback) while it reads them. Restoring
// the newest save does neither: gc never repacks its packs.
func TestRestoreByTimeListsForwardRecordsAndFindsTheNewestMeanwhile(t *testing.T) {
	st, ms := saved(t)
	for _, tc := range []struct {
		m     *manifest.Manifest
		to    func(context.Context, store.Store, *manifest.Manifest, string, bool, string, restore.Progress) (*datadir.Diverged, error)
		lists []string
	}{
		{ms[0], restore.ToDir, []string{manifest.ForwardsPrefix, manifest.SavesPrefix("s")}},
		{ms[1], restore.ToDir, []string{manifest.ForwardsPrefix, manifest.SavesPrefix("s")}},
		{ms[1], restore.NewestToDir, nil},
	} {
		// The listing of the saves waits for a pack to be read: it
		// must not come first.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l := &listings{Store: st, packRead: make(chan struct{})}
		_, err := tc.to(ctx, l, tc.m, filepath.Join(t.TempDir(), "data"), false, "", nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(l.prefixes)
		if !slices.Equal(l.prefixes, tc.lists) {
			t.Errorf("save %s: listed %q, want %q", tc.m.ID, l.prefixes, tc.lists)
		}
	}
}

var errClaimDown = errors.New("claim unreadable")

// claimFails fails every read of the claim and holds every read of a
// pack until its context ends.
type claimFails struct{ store.Store }

func (c *claimFails) Get(ctx context.Context, key string) ([]byte, error) {
	if key == manifest.ClaimKey("s") {
		return nil, errClaimDown
	}
	if strings.HasPrefix(key, "chunks/") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return c.Store.Get(ctx, key)
}

func (c *claimFails) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A restore by time that cannot find the newest save (here the claim
// cannot be read) fails with that error, and stops reading the graph it
// was reading meanwhile.
func TestRestoreStopsReadingWhenTheNewestSaveCannotBeFound(t *testing.T) {
	st, ms := saved(t)
	done := make(chan error, 1)
	go func() {
		_, err := restore.ToDir(context.Background(), &claimFails{st}, ms[0], filepath.Join(t.TempDir(), "data"), false, "", nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errClaimDown) {
			t.Fatalf("ToDir: %v, want the claim's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ToDir went on reading the graph after the newest save could not be found")
	}
}
