package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store/file"
)

// savedFileStore returns a file store URL holding n real saves of session
// "s", oldest first: before save i, edit(s, i) changes the session and says
// when the save is taken.
func savedFileStore(t *testing.T, n int, edit func(s *session.Session, i int) time.Time) (url string, st *file.Store, saves []*manifest.Manifest) {
	t.Helper()
	dir := t.TempDir()
	st, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := session.New()
	var (
		fake *clock.Fake
		sv   *replicate.Saver
	)
	for i := range n {
		now := edit(s, i)
		if fake == nil {
			fake = clock.NewFake(now)
			sv = replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: slog.New(slog.DiscardHandler), Clock: fake})
		}
		fake.Advance(now.Sub(fake.Now())) // the save's time
		if _, err := sv.Save(ctx, "api"); err != nil {
			t.Fatal(err)
		}
	}
	if saves, err = catalog.List(ctx, st, "s"); err != nil || len(saves) != n {
		t.Fatalf("saves: %d %v", len(saves), err)
	}
	return "file://" + dir, st, saves
}

// putNode puts node id with data as the admin.
func putNode(t *testing.T, s *session.Session, id, data string) {
	t.Helper()
	if _, err := s.Put(session.Actor{Admin: true}, id, session.NodeInput{Type: "object", Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
}
