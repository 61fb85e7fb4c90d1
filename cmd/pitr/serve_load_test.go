package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store/file"
)

// TestLoadLocalChoosesStartState covers how serve starts from a data dir
// that holds an older save than the store's newest.
func TestLoadLocalChoosesStartState(t *testing.T) {
	ctx := context.Background()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := session.New()
	sv := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: log})
	var ids []string
	for _, data := range []string{"old", "new"} {
		if _, err := s.Put(session.Actor{Admin: true}, "n", session.NodeInput{Type: "t", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
		r, err := sv.Save(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
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
			m, err := restore.Choose(ctx, st, "s", sv.Status().LastSave.Time.Add(-1), false)
			if err != nil || m.ID != ids[0] {
				t.Fatalf("choose the old save: %v %v", m, err)
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
