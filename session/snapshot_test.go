package session

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Snapshots taken between puts and deletes of every kind (new ids before,
// between and after the others, replaced nodes, deleted ones, many
// changes at once) hold exactly the live nodes, sorted by id, and a
// snapshot is not changed by later edits.
func TestSnapshotFollowsEdits(t *testing.T) {
	a := Actor{User: "root", Admin: true}
	s := New()
	rng := rand.New(rand.NewPCG(1, 2))
	var held []*Graph
	var want [][]*Node
	for round := range 300 {
		for range rng.IntN([]int{1, 4, 400}[round%3]) {
			id := fmt.Sprintf("n%03d", rng.IntN(500))
			if rng.IntN(4) == 0 {
				_ = s.Delete(a, id) // absent: nothing changes
				continue
			}
			if _, err := s.Put(a, id, NodeInput{Type: "object", Data: []byte{byte(round)}}); err != nil {
				t.Fatal(err)
			}
		}
		g := s.Snapshot()
		s.mu.Lock()
		var live []*Node
		for _, n := range s.nodes {
			live = append(live, n)
		}
		s.mu.Unlock()
		slices.SortFunc(live, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) })
		if !slices.Equal(g.Nodes, live) {
			t.Fatalf("round %d: snapshot of %d nodes is not the %d live nodes sorted", round, len(g.Nodes), len(live))
		}
		held, want = append(held, g), append(want, slices.Clone(live))
	}
	for i, g := range held {
		if !slices.Equal(g.Nodes, want[i]) {
			t.Fatalf("snapshot %d changed after it was taken", i)
		}
	}
}

// Edits made while a Snapshot sorts are not lost: once the edits stop, a
// snapshot holds exactly the live nodes.
func TestSnapshotDuringEdits(t *testing.T) {
	a := Actor{User: "root", Admin: true}
	s := New()
	for i := range 3000 {
		if _, err := s.Put(a, fmt.Sprintf("n%05d", i), NodeInput{Type: "object", Data: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(2, 2))
		for k := range 20000 {
			id := fmt.Sprintf("n%05d", rng.IntN(4000))
			if k%3 == 0 {
				_ = s.Delete(a, id)
			} else if _, err := s.Put(a, id, NodeInput{Type: "object", Data: []byte{byte(k)}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		g := s.Snapshot()
		if !slices.IsSortedFunc(g.Nodes, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatal("a snapshot is not sorted")
		}
	}
	g := s.Snapshot()
	var live []*Node
	for _, n := range s.nodes {
		live = append(live, n)
	}
	slices.SortFunc(live, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) })
	if !slices.Equal(g.Nodes, live) {
		t.Fatalf("after the edits: a snapshot of %d nodes, %d live", len(g.Nodes), len(live))
	}
}
