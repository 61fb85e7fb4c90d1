package claim_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/replicate"
	sess "github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// A save whose Fence passed just before a takeover still stores its
// manifest, but it can never be committed: readers skip it, and the new
// holder's saves and the old holder's committed ones are what restores see.
func TestFencedWriterNeverCommits(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		tl := newTimeline()
		a := mustAcquire(t, st, server(tl, "host-a", nil))
		graph := sess.New()
		put := func(data string) {
			t.Helper()
			if _, err := graph.Put(sess.Actor{Admin: true}, "n", sess.NodeInput{Type: "t", Data: []byte(data)}); err != nil {
				t.Fatal(err)
			}
		}
		var b *claim.Claim
		takeOverDuringSave := false
		fence := func(ctx context.Context) (uint64, error) {
			g, err := a.Fence(ctx)
			if takeOverDuringSave && b == nil {
				opts := server(tl, "host-b", nil)
				opts.Takeover = true
				b = mustAcquire(t, st, opts) // between A's fence and A's manifest
			}
			return g, err
		}
		saverA := replicate.New(graph, replicate.Config{Store: st, Session: session, Fence: fence, Commit: a.Commit,
			Logger: slog.New(slog.DiscardHandler)})
		put("committed by a")
		x, err := saverA.Save(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		takeOverDuringSave = true
		put("stored by a after the takeover")
		if _, err := saverA.Save(ctx, "api"); !errors.Is(err, replicate.ErrFenced) {
			t.Fatalf("save across the takeover: %v, want ErrFenced", err)
		}
		refs, err := catalog.Refs(ctx, st, session)
		if err != nil || len(refs) != 2 {
			t.Fatalf("want the fenced manifest stored (2 manifests), got %d %v", len(refs), err)
		}
		newest, err := catalog.Newest(ctx, st, session)
		if err != nil || newest.ID != x.ID {
			t.Fatalf("newest %v %v, want a's committed save %s", newest, err, x.ID)
		}
		// the new holder's saves count
		graphB := sess.New()
		if _, err := graphB.Put(sess.Actor{Admin: true}, "n", sess.NodeInput{Type: "t", Data: []byte("b")}); err != nil {
			t.Fatal(err)
		}
		saverB := replicate.New(graphB, replicate.Config{Store: st, Session: session, Fence: b.Fence, Commit: b.Commit,
			Logger: slog.New(slog.DiscardHandler)})
		z, err := saverB.Save(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		all, err := catalog.List(ctx, st, session)
		if err != nil || len(all) != 2 || all[0].ID != x.ID || all[1].ID != z.ID {
			t.Fatalf("committed saves %v %v, want %s and %s", all, err, x.ID, z.ID)
		}
		if r := record(t, st); r.LastSave != z.ID || len(r.History) != 2 || r.History[0].LastSave != x.ID {
			t.Fatalf("claim record %+v", r)
		}
	})
}
