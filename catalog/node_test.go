package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
)

var admin = session.Actor{User: "root", Admin: true}

// savedGraph saves a graph of small, middle and large (CDC-cut) nodes and
// returns the store, the save and the graph.
func savedGraph(t *testing.T, n int) (*file.Store, *manifest.Manifest, *session.Graph) {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := session.New()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range n {
		size := 200 + r.IntN(3000)
		if i%50 == 7 {
			size = 150_000 + r.IntN(100_000) // cut inside, across leaves
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		if _, err := s.Put(admin, fmt.Sprintf("n%05d", 10*i), session.NodeInput{Type: "object", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	sv := replicate.New(s, replicate.Config{Store: st, Session: "s", Logger: slog.New(slog.DiscardHandler)})
	res, err := sv.Save(context.Background(), "api")
	if err != nil {
		t.Fatal(err)
	}
	m, err := catalog.Load(context.Background(), st, "s", res.ID)
	if err != nil {
		t.Fatal(err)
	}
	return st, m, s.Snapshot()
}

// Every node of a save reads back alone, with a handful of requests, and
// an id the save does not have is ErrNoNode.
func TestNodeReadsOneNode(t *testing.T) {
	ctx := context.Background()
	fst, m, g := savedGraph(t, 400)
	if m.Tree.Levels < 2 {
		t.Fatalf("fixture: a %d-level tree", m.Tree.Levels)
	}
	st := counting.New(fst)
	for i, want := range g.Nodes {
		got, err := catalog.Node(ctx, st, m, want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("node %s: %v (got %d bytes, want %d)", want.ID, err, len(got.Data), len(want.Data))
		}
		if i%37 == 0 {
			before := st.Snapshot()
			if _, err := catalog.Node(ctx, st, m, want.ID); err != nil {
				t.Fatal(err)
			}
			if n := st.Snapshot().Sub(before).Requests(); n > int64(m.Tree.Levels)+2 {
				t.Errorf("node %s (%d bytes): %d requests in a %d-level tree", want.ID, len(want.Data), n, m.Tree.Levels)
			}
		}
	}
	for _, id := range []string{"a", "n00005", "n02005", "zzz"} {
		if _, err := catalog.Node(ctx, st, m, id); !errors.Is(err, catalog.ErrNoNode) {
			t.Errorf("node %s, not in the save: %v", id, err)
		}
	}
}

// Diff names exactly the nodes changed, added and removed between two
// saves, reading only the tree nodes that differ.
func TestDiff(t *testing.T) {
	ctx := context.Background()
	fst, m1, g1 := savedGraph(t, 300)
	s := session.FromGraph(g1)
	sv := replicate.New(s, replicate.Config{Store: fst, Session: "s", Logger: slog.New(slog.DiscardHandler)})
	sv.Prime(m1)
	sv.SetLast(m1)
	r := rand.New(rand.NewPCG(7, 8))
	changed := []string{g1.Nodes[3].ID, g1.Nodes[57].ID, g1.Nodes[150].ID} // 57: a large node
	for _, id := range changed {
		n, _ := s.Get(id)
		data := append([]byte{}, n.Data...)
		data[r.IntN(len(data))] ^= 1
		if _, err := s.Put(admin, id, session.NodeInput{Type: n.Type, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(admin, "n00015", session.NodeInput{Type: "object", Data: []byte("added")}); err != nil {
		t.Fatal(err)
	}
	removed := g1.Nodes[200].ID
	if err := s.Delete(admin, removed); err != nil {
		t.Fatal(err)
	}
	res, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	m2, err := catalog.Load(ctx, fst, "s", res.ID)
	if err != nil {
		t.Fatal(err)
	}
	st := counting.New(fst)
	changes, err := catalog.Diff(ctx, st, m1, m2)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range changes {
		switch {
		case c.Old == nil:
			got[c.ID] = "added"
		case c.New == nil:
			got[c.ID] = "removed"
		default:
			got[c.ID] = "changed"
		}
	}
	want := map[string]string{"n00015": "added", removed: "removed"}
	for _, id := range changed {
		want[id] = "changed"
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diff %v, want %v", got, want)
	}
	if back, err := catalog.Diff(ctx, st, m2, m1); err != nil || len(back) != len(changes) {
		t.Errorf("reverse diff: %d changes, %v", len(back), err)
	}
	if same, err := catalog.Diff(ctx, st, m2, m2); err != nil || len(same) != 0 {
		t.Errorf("a save against itself: %v %v", same, err)
	}
}
