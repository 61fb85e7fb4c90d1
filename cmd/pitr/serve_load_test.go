package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
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

// TestLoadLocalChoosesStartState covers how serve starts from a data dir
// that holds an older save than the store's newest.
func TestLoadLocalChoosesStartState(t *testing.T) {
	ctx := context.Background()
	st, ids := savedStore(t, "old", "new")
	log := quietLog()
	cases := []struct {
		name       string
		restored   bool
		pending    bool
		wantData   string
		wantCommit string
		wantDirty  bool
	}{
		{"stale copy: the store's newest wins", false, false, "new", "", false},
		{"restored older save: the rollback is committed", true, false, "old", "restored:" + ids[0], false},
		{"unsaved local changes: they are saved", false, true, "old", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			m, err := manifest.Load(ctx, st, "s", ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := restore.ToDir(ctx, st, m, dir, false, "", nil); err != nil {
				t.Fatal(err)
			}
			l, _ := datadir.Load(dir)
			l.Meta.Restored, l.Meta.Pending = tc.restored, tc.pending
			if err := datadir.WriteMeta(dir, l.Meta); err != nil {
				t.Fatal(err)
			}
			o := &serveOptions{common: &common{session: "s"}, dataDir: dir}
			got, err := loadLocal(ctx, o, st, log)
			if err != nil {
				t.Fatal(err)
			}
			n, err := got.sess.Get("n")
			if err != nil || string(n.Data) != tc.wantData {
				t.Fatalf("started with %q (%v), want %q", n.Data, err, tc.wantData)
			}
			if got.commitReason != tc.wantCommit || got.dirty != tc.wantDirty {
				t.Fatalf("commit %q dirty %v, want %q %v", got.commitReason, got.dirty, tc.wantCommit, tc.wantDirty)
			}
		})
	}
}

// A restore of the newest save is served as it is, and forgets that it was
// restored: otherwise a later start, after other servers saved, would take
// it for a rollback.
func TestLoadLocalForgetsRestoreOfNewest(t *testing.T) {
	ctx := context.Background()
	st, _ := savedStore(t, "only")
	log := quietLog()
	dir := filepath.Join(t.TempDir(), "data")
	m, err := restore.Choose(ctx, st, "s", time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := restore.ToDir(ctx, st, m, dir, false, "", nil); err != nil {
		t.Fatal(err)
	}
	got, err := loadLocal(ctx, &serveOptions{common: &common{session: "s"}, dataDir: dir}, st, log)
	if err != nil || got.commitReason != "" || got.dirty {
		t.Fatalf("start from a restore of the newest: %+v %v", got, err)
	}
	if l, err := datadir.Load(dir); err != nil || l.Meta.Restored {
		t.Fatalf("restored flag kept: %+v %v", l.Meta, err)
	}
}

// A store that fails for a moment at start-up is waited for, not guessed
// around: the stale copy still yields to the newest save.
func TestLoadLocalWaitsForTheStore(t *testing.T) {
	ctx := context.Background()
	inner, ids := savedStore(t, "old", "new")
	log := quietLog()
	m, err := manifest.Load(ctx, inner, "s", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := restore.ToDir(ctx, inner, m, dir, false, "", nil); err != nil {
		t.Fatal(err)
	}
	l, _ := datadir.Load(dir)
	l.Meta.Restored = false // a copy left from an earlier run
	if err := datadir.WriteMeta(dir, l.Meta); err != nil {
		t.Fatal(err)
	}
	st := faulty.New(inner)
	st.Inject(faulty.Rule{Err: errors.New("503 slow down"), Ops: []faulty.Op{faulty.List}, Times: 1})
	got, err := loadLocal(ctx, &serveOptions{common: &common{session: "s"}, dataDir: dir}, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := got.sess.Get("n"); string(n.Data) != "new" || got.dirty {
		t.Fatalf("after a passing store error: data %q dirty %v, want the newest save", n.Data, got.dirty)
	}
}
