package session

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

var admin = Actor{User: "root", Admin: true}

func active(t *testing.T) *Session {
	t.Helper()
	s := New()
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWaitingNeedsAdmin(t *testing.T) {
	s := New()
	if s.State() != StateWaiting {
		t.Fatalf("new session state %q", s.State())
	}
	if _, err := s.Put(Actor{User: "ann"}, "a", NodeInput{Type: "object"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("user put while waiting: %v", err)
	}
	if _, err := s.Put(admin, "a", NodeInput{Type: "object"}); err != nil {
		t.Fatalf("admin put while waiting: %v", err)
	}
	// SPEC makes only putting nodes admin-only while waiting
	if _, err := s.SetOwner(Actor{User: "ann"}, "a", "ann"); err != nil {
		t.Fatalf("user owner change while waiting: %v", err)
	}
	if err := s.Delete(Actor{User: "ann"}, "a"); err != nil {
		t.Fatalf("user delete while waiting: %v", err)
	}
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(); !errors.Is(err, ErrConflict) {
		t.Fatalf("second init: %v", err)
	}
}

func TestVersionsAndOwnership(t *testing.T) {
	s := active(t)
	ann, bob := Actor{User: "ann"}, Actor{User: "bob"}
	n, err := s.Put(ann, "cube", NodeInput{Type: "object", Owner: "ann", Data: []byte("v1")})
	if err != nil || n.Version != 1 || n.Owner != "ann" {
		t.Fatalf("put: %+v %v", n, err)
	}
	if _, err := s.Put(bob, "cube", NodeInput{Type: "object"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob replacing ann's node: %v", err)
	}
	if err := s.Delete(bob, "cube"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob deleting ann's node: %v", err)
	}
	if _, err := s.SetOwner(bob, "cube", "bob"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob taking ann's node: %v", err)
	}
	if _, err := s.Put(ann, "x", NodeInput{Type: "object", Owner: "bob"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("ann giving a node to bob: %v", err)
	}
	n, err = s.Put(ann, "cube", NodeInput{Type: "object", Owner: "ann", Data: []byte("v2")})
	if err != nil || n.Version != 2 {
		t.Fatalf("owner replaces: %+v %v", n, err)
	}
	n, err = s.Put(admin, "cube", NodeInput{Type: "object", Owner: "bob"})
	if err != nil || n.Version != 3 || n.Owner != "bob" {
		t.Fatalf("admin replaces: %+v %v", n, err)
	}
	got, _ := s.Get("cube")
	if string(got.Data) != "" || got.Owner != "bob" {
		t.Fatalf("get after admin put: %+v", got)
	}
	// unchanged owner: no new version, no change
	gen := s.Gen()
	if n, err := s.SetOwner(Actor{User: "bob"}, "cube", "bob"); err != nil || n.Version != 3 || s.Gen() != gen {
		t.Fatalf("no-op owner change: %+v %v gen %d→%d", n, err, gen, s.Gen())
	}
}

func TestInvalidInputChangesNothing(t *testing.T) {
	s := active(t)
	if _, err := s.Put(admin, "keep", NodeInput{Type: "object", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	gen := s.Gen()
	cases := []struct {
		name string
		id   string
		in   NodeInput
	}{
		{"empty id", "", NodeInput{Type: "t"}},
		{"slash in id", "a/b", NodeInput{Type: "t"}},
		{"long id", string(make([]byte, 129)), NodeInput{Type: "t"}},
		{"no type", "n", NodeInput{}},
		{"control char type", "n", NodeInput{Type: "a\x00"}},
		{"bad owner", "n", NodeInput{Type: "t", Owner: "a b"}},
		{"bad dep", "n", NodeInput{Type: "t", Deps: []string{"ok", "no way"}}},
		{"duplicate dep", "n", NodeInput{Type: "t", Deps: []string{"a", "a"}}},
		{"self dep", "n", NodeInput{Type: "t", Deps: []string{"n"}}},
		{"replace with bad type", "keep", NodeInput{}},
	}
	for _, tc := range cases {
		if _, err := s.Put(admin, tc.id, tc.in); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", tc.name, err)
		}
	}
	if s.Gen() != gen || s.NodeCount() != 1 {
		t.Fatalf("bad input changed the graph: gen %d→%d, %d nodes", gen, s.Gen(), s.NodeCount())
	}
}

func TestDeleteRemovesDeps(t *testing.T) {
	s := active(t)
	a := Actor{User: "ann"}
	for _, id := range []string{"mat", "mesh"} {
		if _, err := s.Put(a, id, NodeInput{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(a, "obj", NodeInput{Type: "t", Deps: []string{"mesh", "mat"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(a, "mat"); err != nil {
		t.Fatal(err)
	}
	obj, _ := s.Get("obj")
	if !slices.Equal(obj.Deps, []string{"mesh"}) || obj.Version != 2 {
		t.Fatalf("obj after deleting its dep: %+v", obj)
	}
	if err := s.Delete(a, "mat"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestLeaveReturnsNodesToCommon(t *testing.T) {
	s := active(t)
	if err := s.Join("ann"); err != nil {
		t.Fatal(err)
	}
	if err := s.Join("ann"); !errors.Is(err, ErrConflict) {
		t.Fatalf("second join: %v", err)
	}
	if _, err := s.Put(Actor{User: "ann"}, "a", NodeInput{Type: "t", Owner: "ann"}); err != nil {
		t.Fatal(err)
	}
	gen := s.Gen()
	if !slices.Equal(s.Users(), []string{"ann"}) {
		t.Fatalf("users %v", s.Users())
	}
	if got := s.Leave("ann"); got != 1 {
		t.Fatalf("leave changed %d nodes", got)
	}
	n, _ := s.Get("a")
	if n.Owner != Common || n.Version != 2 || s.Gen() == gen || len(s.Users()) != 0 {
		t.Fatalf("after leave: %+v gen %d users %v", n, s.Gen(), s.Users())
	}
	// presence alone is not a change
	gen = s.Gen()
	if err := s.Join("bob"); err != nil {
		t.Fatal(err)
	}
	if s.Leave("bob") != 0 || s.Gen() != gen {
		t.Fatalf("join/leave without nodes changed the graph")
	}
}

func TestSnapshotIsIsolated(t *testing.T) {
	s := active(t)
	if _, err := s.Put(admin, "a", NodeInput{Type: "t", Data: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	if _, err := s.Put(admin, "a", NodeInput{Type: "t", Data: []byte("two")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(admin, "b", NodeInput{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	if len(snap.Nodes) != 1 || string(snap.Nodes[0].Data) != "one" || !snap.Initialized {
		t.Fatalf("snapshot changed: %+v", snap.Nodes[0])
	}
}

func TestEventsAndChanged(t *testing.T) {
	s := active(t)
	<-s.Changed() // from Init
	sub := s.Subscribe()
	defer sub.Close()
	if _, err := s.Put(admin, "a", NodeInput{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Changed():
	default:
		t.Fatal("no change signal after put")
	}
	if err := s.Join("ann"); err != nil {
		t.Fatal(err)
	}
	e1, e2 := <-sub.C, <-sub.C
	if e1.Type != EventPut || e1.Node.ID != "a" || e2.Type != EventJoin || e2.User != "ann" || e2.Seq != e1.Seq+1 {
		t.Fatalf("events %+v %+v", e1, e2)
	}
	select {
	case <-s.Changed():
		t.Fatal("join signalled a change")
	default:
	}
	sub.Close()
	sub.Close()
	if _, ok := <-sub.C; ok {
		t.Fatal("closed subscription still open")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	s := active(t)
	sub := s.Subscribe()
	for i := 0; i <= subscriberBuffer; i++ {
		if _, err := s.Put(admin, "a", NodeInput{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for range sub.C {
		n++
	}
	if n != subscriberBuffer {
		t.Fatalf("got %d events before close, want %d", n, subscriberBuffer)
	}
}

func TestFromGraph(t *testing.T) {
	g := &Graph{Initialized: true, Nodes: []*Node{{ID: "a", Type: "t", Owner: Common, Version: 7}}}
	s := FromGraph(g)
	if s.State() != StateActive || s.NodeCount() != 1 {
		t.Fatalf("state %s, %d nodes", s.State(), s.NodeCount())
	}
	n, err := s.Put(admin, "a", NodeInput{Type: "t"})
	if err != nil || n.Version != 8 {
		t.Fatalf("version continues after restore: %+v %v", n, err)
	}
	if FromGraph(&Graph{}).State() != StateWaiting {
		t.Fatal("uninitialized graph starts active")
	}
}

// A fenced session refuses every edit, changes no owner when a user
// leaves, tells subscribers once, and still serves reads and presence.
func TestFence(t *testing.T) {
	s := New()
	admin := Actor{Admin: true}
	if _, err := s.Put(admin, "n", NodeInput{Type: "t", Owner: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Join("ann"); err != nil {
		t.Fatal(err)
	}
	sub := s.Subscribe()
	defer sub.Close()
	gen := s.Gen()
	s.Fence("host-b holds the claim")
	s.Fence("again")
	checks := map[string]error{
		"init":   s.Init(),
		"delete": s.Delete(admin, "n"),
	}
	_, checks["put"] = s.Put(admin, "m", NodeInput{Type: "t"})
	_, checks["owner"] = s.SetOwner(admin, "n", Common)
	for op, err := range checks {
		if !errors.Is(err, ErrFenced) || !strings.Contains(err.Error(), "host-b") {
			t.Errorf("%s on a fenced session: %v, want ErrFenced naming the holder", op, err)
		}
	}
	if n := s.Leave("ann"); n != 0 {
		t.Errorf("leave on a fenced session returned %d nodes to COMMON", n)
	}
	if n, err := s.Get("n"); err != nil || n.Owner != "ann" || s.Gen() != gen {
		t.Errorf("fenced session changed: %+v %v, gen %d → %d", n, err, gen, s.Gen())
	}
	if err := s.Join("bob"); err != nil {
		t.Errorf("join on a fenced session: %v", err)
	}
	e := <-sub.C
	if e.Type != EventFenced || e.Reason != "host-b holds the claim" {
		t.Fatalf("first event %+v, want one fenced event with the first reason", e)
	}
	for len(sub.C) > 0 {
		if e := <-sub.C; e.Type == EventFenced {
			t.Fatalf("second fenced event %+v", e)
		}
	}
}

// Snapshot lists the nodes sorted after any mix of puts and deletes,
// including a delete and an add that keep the count.
func TestSnapshotOrderAfterEdits(t *testing.T) {
	s := New()
	a := Actor{User: "root", Admin: true}
	put := func(id string) {
		if _, err := s.Put(a, id, NodeInput{Type: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"m", "c", "x", "a"} {
		put(id)
	}
	check := func(want ...string) {
		t.Helper()
		var got []string
		for _, n := range s.Snapshot().Nodes {
			got = append(got, n.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("snapshot %v, want %v", got, want)
		}
	}
	check("a", "c", "m", "x")
	put("c") // replaced: the order holds
	check("a", "c", "m", "x")
	if err := s.Delete(a, "m"); err != nil {
		t.Fatal(err)
	}
	put("b") // same count, another id
	check("a", "b", "c", "x")
	put("z")
	check("a", "b", "c", "x", "z")
}
