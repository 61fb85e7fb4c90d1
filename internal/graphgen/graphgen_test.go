package graphgen

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func TestGenerateShape(t *testing.T) {
	nodes := Generate(1, 2000)
	if len(nodes) != 2000 {
		t.Fatalf("got %d nodes, want 2000", len(nodes))
	}
	validID := regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	ids := map[string]bool{}
	count := map[string]int{}
	total := 0
	sizes := map[string][2]int{
		TypeObject: {1_000, 10_000}, TypeMaterial: {30_000, 100_000}, TypeMesh: {100_000, 2_000_000},
	}
	for i, nd := range nodes {
		if !validID.MatchString(nd.ID) {
			t.Errorf("node %d: invalid id %q", i, nd.ID)
		}
		if ids[nd.ID] {
			t.Errorf("duplicate id %q", nd.ID)
		}
		ids[nd.ID] = true
		if i > 0 && nodes[i-1].ID >= nd.ID {
			t.Errorf("nodes not sorted at %d: %q >= %q", i, nodes[i-1].ID, nd.ID)
		}
		count[nd.Type]++
		total += len(nd.Data)
		r := sizes[nd.Type]
		if lo, hi := r[0], r[1]; len(nd.Data) < lo || len(nd.Data) > hi {
			t.Errorf("node %s (%s): %d bytes, want %d..%d", nd.ID, nd.Type, len(nd.Data), lo, hi)
		}
	}
	for _, nd := range nodes {
		for _, d := range nd.Deps {
			if !ids[d] || d == nd.ID {
				t.Errorf("node %s: bad dep %q", nd.ID, d)
			}
		}
	}
	if count[TypeMesh] != 10 || count[TypeMaterial] != 80 || count[TypeObject] != 1910 {
		t.Errorf("type counts %v", count)
	}
	if total < 15e6 || total > 20e6 {
		t.Errorf("total %d bytes, want 15–20 MB", total)
	}
	var all bytes.Buffer
	for _, nd := range nodes {
		all.Write(nd.Data)
	}
	var z bytes.Buffer
	w := lz4.NewWriter(&z)
	if _, err := w.Write(all.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ratio := float64(z.Len()) / float64(all.Len())
	t.Logf("total %d bytes, lz4 %.2f, types %v", total, ratio, count)
	if ratio < 0.3 || ratio > 0.85 {
		t.Errorf("lz4 ratio %.2f, want partly compressible data", ratio)
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, b := Generate(7, 300), Generate(7, 300)
	c := Generate(8, 300)
	if !equalNodes(a, b) {
		t.Fatal("same seed gave different graphs")
	}
	if equalNodes(a, c) {
		t.Fatal("different seeds gave the same graph")
	}
	for _, n := range []int{0, 1, 2, 3, 10} {
		if got := len(Generate(1, n)); got != n {
			t.Errorf("Generate(1, %d): %d nodes", n, got)
		}
	}
}

func equalNodes(a, b []Node) bool {
	return slices.EqualFunc(a, b, func(x, y Node) bool {
		return x.ID == y.ID && x.Type == y.Type && x.Owner == y.Owner &&
			slices.Equal(x.Deps, y.Deps) && bytes.Equal(x.Data, y.Data)
	})
}

func TestMutate(t *testing.T) {
	nodes := Generate(1, 2000)
	orig := Generate(1, 2000)
	changed, n := Mutate(nodes, 3, 0.01)
	if len(changed) != 20 {
		t.Fatalf("changed %d nodes, want 20", len(changed))
	}
	if !equalNodes(nodes, orig) {
		t.Fatal("Mutate modified its input")
	}
	byID := map[string]Node{}
	for _, nd := range nodes {
		byID[nd.ID] = nd
	}
	sum := 0
	for i, nd := range changed {
		if i > 0 && changed[i-1].ID >= nd.ID {
			t.Errorf("changed not sorted")
		}
		old := byID[nd.ID]
		if len(old.Data) != len(nd.Data) {
			t.Errorf("%s: size changed", nd.ID)
		}
		d := diffBytes(old.Data, nd.Data)
		if d == 0 {
			t.Errorf("%s: unchanged", nd.ID)
		}
		if len(old.Data) <= SmallNode && d < len(old.Data)/2 {
			t.Errorf("%s: small node: only %d of %d bytes changed", nd.ID, d, len(old.Data))
		}
		if len(old.Data) > SmallNode {
			lo, hi := -1, -1
			for j := range old.Data {
				if old.Data[j] != nd.Data[j] {
					if lo < 0 {
						lo = j
					}
					hi = j
				}
			}
			if hi-lo+1 > MaxRegion {
				t.Errorf("%s: changed span %d > %d", nd.ID, hi-lo+1, MaxRegion)
			}
		}
		sum += d
	}
	if sum != n {
		t.Errorf("changedBytes %d, recount %d", n, sum)
	}
	again, n2 := Mutate(nodes, 3, 0.01)
	if !equalNodes(changed, again) || n != n2 {
		t.Error("Mutate not deterministic")
	}
	next := Apply(nodes, changed)
	if len(next) != len(nodes) {
		t.Fatalf("Apply: %d nodes, want %d", len(next), len(nodes))
	}
	for _, nd := range changed {
		i := slices.IndexFunc(next, func(x Node) bool { return x.ID == nd.ID })
		if i < 0 || !bytes.Equal(next[i].Data, nd.Data) {
			t.Errorf("Apply: %s not replaced", nd.ID)
		}
	}
	if !equalNodes(nodes, orig) {
		t.Fatal("Apply modified its input")
	}
	if _, n0 := Mutate(nodes, 3, 0); n0 != 0 {
		t.Error("fraction 0 changed bytes")
	}
}
