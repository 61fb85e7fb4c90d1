package session

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// recorder is a Journal that keeps the encoded ops.
type recorder struct{ ops [][]byte }

func (r *recorder) Append(op Op) uint64 {
	r.ops = append(r.ops, EncodeOp(op))
	return uint64(len(r.ops))
}
func (r *recorder) Wait(context.Context, uint64) error { return nil }
func (r *recorder) Err() error                         { return nil }

// Replaying the journaled ops of a session, once or twice, on the graph it
// started from gives the same graph, versions included.
func TestOpsReplayToTheSameGraph(t *testing.T) {
	s := New()
	if _, err := s.Put(Actor{Admin: true}, "base", NodeInput{Type: "t", Data: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	start := s.Snapshot()
	rec := &recorder{}
	s.SetJournal(rec, 0)
	admin := Actor{Admin: true}
	steps := []func() error{
		func() error { return s.Init() },
		func() error {
			_, err := s.Put(admin, "a", NodeInput{Type: "mesh", Deps: []string{"base"}, Data: []byte{0, 1}})
			return err
		},
		func() error {
			_, err := s.Put(admin, "c", NodeInput{Type: "mesh", Owner: "ann", Deps: []string{"a", "base"}})
			return err
		},
		func() error { _, err := s.SetOwner(admin, "a", "bob"); return err },
		func() error { return s.Join("ann") },
		func() error { s.Leave("ann"); return nil },
		func() error { return s.Delete(admin, "base") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := Encode(s.Snapshot())
	for _, times := range []int{1, 2} {
		r := FromGraph(start)
		for range times {
			for _, b := range rec.ops {
				op, err := DecodeOp(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Apply(op); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := Encode(r.Snapshot()); !bytes.Equal(got, want) {
			t.Fatalf("replayed %d× differs from the live graph", times)
		}
	}
}

func TestDecodeOpBadInput(t *testing.T) {
	good := EncodeOp(Op{Kind: OpOwner, ID: "n", Owner: "ann", Version: 2})
	cases := map[string][]byte{
		"empty":            {},
		"unknown kind":     {'Z'},
		"truncated":        good[:len(good)-1],
		"trailing bytes":   append(append([]byte{}, good...), 0),
		"bad id":           EncodeOp(Op{Kind: OpOwner, ID: "a b", Owner: "ann", Version: 2}),
		"bad owner":        EncodeOp(Op{Kind: OpOwner, ID: "n", Owner: "", Version: 2}),
		"put without node": {byte(OpPut)},
		"init with bytes":  {byte(OpInit), 1},
	}
	for name, b := range cases {
		if _, err := DecodeOp(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeOp(f *testing.F) {
	f.Add(EncodeOp(Op{Kind: OpPut, Node: &Node{ID: "n", Type: "t", Owner: Common, Deps: []string{}, Data: []byte("x"), Version: 1}}))
	f.Add(EncodeOp(Op{Kind: OpDelete, ID: "n", Deps: []DepUpdate{{ID: "m", Version: 2}}}))
	f.Add(EncodeOp(Op{Kind: OpInit}))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOp(b)
		if err != nil {
			return
		}
		if again, err := DecodeOp(EncodeOp(op)); err != nil || again.Kind != op.Kind {
			t.Fatalf("re-encoded op does not decode: %v", err)
		}
	})
}

// brokenJournal has lost its disk.
type brokenJournal struct{ recorder }

func (b *brokenJournal) Err() error { return errors.New("no space left on device") }

// Once the journal cannot write, every edit is refused and nothing changes:
// no edit is applied that could not be made durable.
func TestBrokenJournalRefusesEdits(t *testing.T) {
	s := New()
	admin := Actor{Admin: true}
	if _, err := s.Put(admin, "n", NodeInput{Type: "t", Owner: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Join("ann"); err != nil {
		t.Fatal(err)
	}
	j := &brokenJournal{}
	s.SetJournal(j, 0)
	gen := s.Gen()
	_, errPut := s.Put(admin, "m", NodeInput{Type: "t"})
	for name, err := range map[string]error{"put": errPut, "delete": s.Delete(admin, "n"), "init": s.Init()} {
		if !errors.Is(err, ErrNotDurable) {
			t.Errorf("%s with a broken journal: %v, want ErrNotDurable", name, err)
		}
	}
	s.Leave("ann")
	if s.Gen() != gen || len(j.ops) != 0 {
		t.Fatalf("a broken journal let the graph change (gen %d → %d, %d ops)", gen, s.Gen(), len(j.ops))
	}
}

// OpParts concatenates to EncodeOp, sharing a put's data.
func TestOpParts(t *testing.T) {
	data := []byte("some node data")
	for _, op := range []Op{
		{Kind: OpPut, Node: &Node{ID: "n", Type: "mesh", Owner: "ann", Deps: []string{"a", "b"}, Data: data, Version: 7}},
		{Kind: OpPut, Node: &Node{ID: "e", Type: "t", Owner: Common, Deps: []string{}, Data: []byte{}, Version: 1}},
		{Kind: OpOwner, ID: "n", Owner: "bob", Version: 3},
		{Kind: OpInit},
	} {
		if got := bytes.Join(OpParts(op), nil); !bytes.Equal(got, EncodeOp(op)) {
			t.Fatalf("%c: parts join to %x, want %x", op.Kind, got, EncodeOp(op))
		}
	}
	parts := OpParts(Op{Kind: OpPut, Node: &Node{ID: "n", Type: "t", Owner: Common, Data: data, Version: 1}})
	if &parts[1][0] != &data[0] {
		t.Fatal("OpParts copied the node data")
	}
}
