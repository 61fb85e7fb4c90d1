package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/faulty"
	"github.com/pitr-dev/pitr/store/file"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// savedStore returns a file store holding one save of session "s" per
// value of node "n", oldest first, and their ids.
func savedStore(t *testing.T, values ...string) (*file.Store, []string) {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := session.New()
	sv := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: quietLog()})
	var ids []string
	for _, data := range values {
		if _, err := s.Put(session.Actor{Admin: true}, "n", session.NodeInput{Type: "t", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		r, err := sv.Save(context.Background(), "api")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return st, ids
}

// dataDirAt restores save id of st into a new data dir: a rollback still
// to be committed when restored, else a data dir start-up found on that
// save.
func dataDirAt(t *testing.T, st store.Store, id string, restored bool) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	m, err := catalog.Load(ctx, st, "s", id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restore.ToDir(ctx, st, m, dir, false, st.String(), nil); err != nil {
		t.Fatal(err)
	}
	if restored {
		return dir
	}
	l, err := datadir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := datadir.Dir{Path: dir, Session: "s", Store: st.String()}
	if err := d.FoundAt(l, datadir.Save{ID: m.ID, Time: m.Time}, false); err != nil {
		t.Fatal(err)
	}
	return dir
}

// editGraph puts node n=data into the data dir's graph, leaving
// session.json as it is (so the graph is newer than it: unsaved edits).
func editGraph(t *testing.T, dir, data string) {
	t.Helper()
	l, err := datadir.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := session.FromGraph(l.Graph)
	if _, err := s.Put(session.Actor{Admin: true}, "n", session.NodeInput{Type: "t", Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, datadir.GraphFile), session.Encode(s.Snapshot()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func nodeData(t *testing.T, s *session.Session) string {
	t.Helper()
	n, err := s.Get("n")
	if err != nil {
		t.Fatal(err)
	}
	return string(n.Data)
}

// TestStartChoosesState is the table of start-up cases with a data dir
// and a store that has saves (see the package comment).
func TestStartChoosesState(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "old", "new")
	cases := []struct {
		name       string
		base       string // the save the data dir holds
		restored   bool
		edit       string // unsaved edit of node n, "" for none
		forceLocal bool
		wantData   string
		wantCommit string
		wantDirty  bool
		wantAside  bool
	}{
		{"on the newest save: served as it is", ids[1], false, "", false, "new", "", false, false},
		{"on the newest save with edits: served and saved", ids[1], false, "newer", false, "newer", "", true, false},
		{"stale copy: the store's newest wins", ids[0], false, "", false, "new", "", false, false},
		{"restored older save: the rollback is committed", ids[0], true, "", false, "old", "restored:" + ids[0], false, false},
		{"edits on an older save: set aside, the newest is served", ids[0], false, "mine", false, "new", "", false, true},
		{"edits on an older save with --force-local: saved over the newest", ids[0], false, "mine", true, "mine", "", true, false},
		{"edits equal to the newest save (committed before a crash): no save", ids[0], false, "new", false, "new", "", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := dataDirAt(t, st, tc.base, tc.restored)
			if tc.edit != "" {
				editGraph(t, dir, tc.edit)
			}
			at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
			got, err := Start(ctx, Options{Store: st, StoreID: st.String(), Session: "s", DataDir: dir, ForceLocal: tc.forceLocal, Logger: quietLog(),
				Clock: clock.NewFake(at)})
			if err != nil {
				t.Fatal(err)
			}
			if d := nodeData(t, got.Session); d != tc.wantData {
				t.Fatalf("started with %q, want %q", d, tc.wantData)
			}
			if got.CommitReason() != tc.wantCommit || got.Dirty != tc.wantDirty {
				t.Fatalf("commit %q dirty %v, want %q %v", got.CommitReason(), got.Dirty, tc.wantCommit, tc.wantDirty)
			}
			copies, err := datadir.ListDiverged(dir)
			if err != nil {
				t.Fatal(err)
			}
			if (got.SetAside != nil) != tc.wantAside || len(copies) != map[bool]int{true: 1}[tc.wantAside] {
				t.Fatalf("set aside %v (%d copies), want %v", got.SetAside, len(copies), tc.wantAside)
			}
			// What the data dir says now must match what is served.
			l, err := datadir.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := nodeData(t, session.FromGraph(l.Graph)); d != tc.wantData {
				t.Fatalf("data dir holds %q, want %q", d, tc.wantData)
			}
			if l.Dirty != tc.wantDirty || l.Meta.Restored != (tc.wantCommit != "") {
				t.Fatalf("data dir dirty %v restored %v, want %v %v", l.Dirty, l.Meta.Restored, tc.wantDirty, tc.wantCommit != "")
			}
			if tc.wantAside {
				d, local, err := datadir.LoadDiverged(dir, copies[0].Name)
				if err != nil {
					t.Fatal(err)
				}
				if nodeData(t, session.FromGraph(local.Graph)) != tc.edit || d.Info.BaseSave != tc.base || d.Info.NewestSave != ids[1] || !d.Info.SetAsideAt.Equal(at) {
					t.Fatalf("set-aside copy %+v holds %q", d.Info, nodeData(t, session.FromGraph(local.Graph)))
				}
			}
		})
	}
}

// Setting aside twice (a crash before the newest save replaced the data
// dir) keeps one copy.
func TestStartSetsAsideOnce(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "old", "new")
	dir := dataDirAt(t, st, ids[0], false)
	editGraph(t, dir, "mine")
	info := datadir.DivergedInfo{Session: "s", BaseSave: ids[0], NewestSave: ids[1]}
	if _, err := (datadir.Dir{Path: dir}).SetAside(info); err != nil {
		t.Fatal(err)
	}
	got, err := Start(ctx, Options{Store: st, StoreID: st.String(), Session: "s", DataDir: dir, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	copies, _ := datadir.ListDiverged(dir)
	if got.SetAside == nil || len(copies) != 1 {
		t.Fatalf("%d copies after setting the same graph aside twice, want 1 (set aside: %v, data %q)", len(copies), got.SetAside, nodeData(t, got.Session))
	}
}

// A data dir whose graph never held anything and was never saved is
// replaced by the newest save without a set-aside copy; one with content
// is set aside.
func TestStartUnsavedDataDir(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "only")
	for _, withNode := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		s := session.New()
		if withNode {
			if _, err := s.Put(session.Actor{Admin: true}, "n", session.NodeInput{Type: "t", Data: []byte("local")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := (datadir.Dir{Path: dir, Session: "s"}).Edited(s.Snapshot(), nil, false); err != nil {
			t.Fatal(err)
		}
		got, err := Start(ctx, Options{Store: st, StoreID: st.String(), Session: "s", DataDir: dir, Logger: quietLog()})
		if err != nil {
			t.Fatal(err)
		}
		if nodeData(t, got.Session) != "only" || got.From == nil || got.From.ID != ids[0] || (got.SetAside != nil) != withNode {
			t.Fatalf("with a node %v: served %q, set aside %v", withNode, nodeData(t, got.Session), got.SetAside)
		}
	}
}

// A restore of the newest save is served as it is, and forgets that it was
// restored: otherwise a later start, after other servers saved, would take
// it for a rollback.
func TestStartForgetsRestoreOfNewest(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "only")
	dir := dataDirAt(t, st, ids[0], true)
	got, err := Start(ctx, Options{Store: st, StoreID: st.String(), Session: "s", DataDir: dir, Logger: quietLog()})
	if err != nil || got.CommitReason() != "" || got.Dirty {
		t.Fatalf("start from a restore of the newest: %+v %v", got, err)
	}
	if l, err := datadir.Load(dir); err != nil || l.Meta.Restored {
		t.Fatalf("restored flag kept: %+v %v", l.Meta, err)
	}
}

// A store that fails for a moment at start-up is waited for, not guessed
// around: the stale copy still yields to the newest save. The waits run on
// the start-up's clock.
func TestStartWaitsForTheStore(t *testing.T) {
	ctx := context.Background()
	inner, ids := savedStore(t, "old", "new")
	dir := dataDirAt(t, inner, ids[0], false)
	st := faulty.New(inner)
	st.Inject(faulty.Rule{Err: errors.New("503 slow down"), Ops: []faulty.Op{faulty.List}, Times: 2})
	fake := clock.NewFake(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
	type started struct {
		s   *State
		err error
	}
	done := make(chan started, 1)
	go func() {
		s, err := Start(ctx, Options{Store: st, StoreID: inner.String(), Session: "s", DataDir: dir, Logger: quietLog(), Clock: fake})
		done <- started{s, err}
	}()
	for i := range 2 {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fake.BlockUntilContext(wctx, 1)
		cancel()
		if err != nil {
			t.Fatalf("start-up did not wait for the store after failure %d: %v", i+1, err)
		}
		fake.Advance(time.Hour) // past any backoff
	}
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if nodeData(t, got.s.Session) != "new" || got.s.Dirty {
		t.Fatalf("after passing store errors: data %q dirty %v, want the newest save", nodeData(t, got.s.Session), got.s.Dirty)
	}
}

// An empty data dir starts from the newest save, or empty with NoRestore
// or no saves.
func TestStartEmptyDataDir(t *testing.T) {
	ctx := context.Background()
	st, _ := savedStore(t, "only")
	empty, _ := file.New(t.TempDir())
	cases := []struct {
		name      string
		st        store.Store
		noRestore bool
		wantNodes int
	}{
		{"restores the newest save", st, false, 1},
		{"--no-restore starts empty", st, true, 0},
		{"no saves: starts empty", empty, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			got, err := Start(ctx, Options{Store: tc.st, StoreID: tc.st.String(), Session: "s", DataDir: dir, NoRestore: tc.noRestore, Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			if got.Session.NodeCount() != tc.wantNodes {
				t.Fatalf("%d nodes, want %d", got.Session.NodeCount(), tc.wantNodes)
			}
		})
	}
}

// Preload refuses a data dir of another store or session, naming both,
// and writes nothing; with adopt it passes, and Start rewrites it to belong
// here, unsaved.
func TestPreloadAndAdopt(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "only")
	empty, _ := file.New(t.TempDir())
	cases := []struct {
		name    string
		storeID string
		session string
		adopt   bool
		wantErr string
	}{
		{"same store and session", st.String(), "s", false, ""},
		{"another store", empty.String(), "s", false, empty.String()},
		{"another session", st.String(), "other", false, `"other"`},
		{"another store, adopted", empty.String(), "s", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := dataDirAt(t, st, ids[0], true)
			before, _ := os.ReadFile(filepath.Join(dir, datadir.MetaFile))
			local, err := Preload(Options{DataDir: dir, StoreID: tc.storeID, Session: tc.session, Adopt: tc.adopt, Logger: quietLog()})
			after, _ := os.ReadFile(filepath.Join(dir, datadir.MetaFile))
			if string(before) != string(after) {
				t.Fatal("Preload changed the data dir")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), st.String()) || !strings.Contains(err.Error(), "--adopt") {
					t.Fatalf("Preload = %v, want an error naming both stores/sessions and --adopt", err)
				}
				return
			}
			if err != nil || local == nil {
				t.Fatalf("Preload = %v, %v", local, err)
			}
			if !tc.adopt {
				return
			}
			got, err := Start(ctx, Options{Store: empty, StoreID: tc.storeID, Session: "s", DataDir: dir, Adopt: true, Local: local, Logger: quietLog()})
			if err != nil || !got.Dirty || nodeData(t, got.Session) != "only" {
				t.Fatalf("adopted start: %+v, %v; want the data dir, to be saved", got, err)
			}
			meta, _, _ := datadir.LoadMeta(dir)
			if meta.StoreURL != tc.storeID || meta.SaveID != "" || !meta.Pending {
				t.Fatalf("adopted data dir says %+v", meta)
			}
		})
	}
}

// A damaged newest save fails start-up at once, naming the remedy, instead
// of being waited for like an outage; --skip-corrupt serves the newest
// intact committed save.
func TestStartDamagedNewestSave(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "old", "new")
	onDamaged := dataDirAt(t, st, ids[1], false)
	key, err := manifest.Key("s", ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, key, []byte("{not a manifest")); err != nil {
		t.Fatal(err)
	}
	never := func(time.Duration) <-chan time.Time { t.Fatal("start-up waited on a damaged save"); return nil }
	for _, local := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "data")
		if local {
			dir = dataDirAt(t, st, ids[0], false)
		}
		o := Options{Store: st, StoreID: st.String(), Session: "s", DataDir: dir, Logger: quietLog(), Retry: backoff.Policy{Clock: afterFunc{clock.NewFake(time.Unix(0, 0)), never}}}
		_, err := Start(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "--skip-corrupt") || !strings.Contains(err.Error(), "pitr verify") {
			t.Fatalf("data dir %v: start with a damaged newest save: %v, want the remedy named", local, err)
		}
		o.SkipCorrupt = true
		got, err := Start(ctx, o)
		if err != nil || nodeData(t, got.Session) != "old" || got.Newest == nil || got.Newest.ID != ids[0] {
			t.Fatalf("data dir %v: --skip-corrupt: %+v, %v; want the intact save %s", local, got, err, ids[0])
		}
	}
	// A data dir holding the damaged save itself is kept, set aside, not
	// overwritten by the older save.
	got, err := Start(ctx, Options{Store: st, StoreID: st.String(), Session: "s", DataDir: onDamaged, Logger: quietLog(), SkipCorrupt: true})
	if err != nil || got.SetAside == nil {
		t.Fatalf("--skip-corrupt over a copy of the damaged save: %+v, %v; want it set aside", got, err)
	}
	if _, kept, err := datadir.LoadDiverged(onDamaged, got.SetAside.Name); err != nil || nodeData(t, session.FromGraph(kept.Graph)) != "new" {
		t.Fatalf("set-aside copy of the damaged save: %v", err)
	}
}

// afterFunc is a fake clock whose After is f.
type afterFunc struct {
	*clock.Fake
	f func(time.Duration) <-chan time.Time
}

func (a afterFunc) After(d time.Duration) <-chan time.Time { return a.f(d) }
