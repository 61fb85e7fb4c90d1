package session

import (
	"fmt"
	"testing"
)

func TestDiff(t *testing.T) {
	n := func(id, data string, version uint64) *Node {
		return &Node{ID: id, Type: "mesh", Owner: Common, Deps: []string{}, Data: []byte(data), Version: version}
	}
	base := &Graph{Nodes: []*Node{n("a", "1", 1), n("b", "1", 1), n("c", "1", 1), n("e", "1", 4)}}
	other := &Graph{Nodes: []*Node{n("b", "2", 2), n("c", "1", 1), n("d", "1", 1), n("e", "1", 9)}}
	owned := *other.Nodes[1]
	owned.Owner = "ann"
	withOwner := &Graph{Nodes: []*Node{other.Nodes[0], &owned}}
	cases := []struct {
		name string
		a, b *Graph
		want string
	}{
		{"removed, changed, added; same content at another version is no change", base, other, "[a removed b changed d added]"},
		{"the reverse", other, base, "[a added b changed d removed]"},
		{"equal graphs", base, base, "[]"},
		{"from nothing", nil, &Graph{Nodes: []*Node{n("x", "", 1)}}, "[x added]"},
		{"to nothing", &Graph{Nodes: []*Node{n("x", "", 1)}}, nil, "[x removed]"},
		{"owner counts", &Graph{Nodes: other.Nodes[:2]}, withOwner, "[c changed]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{}
			for _, c := range Diff(tc.a, tc.b) {
				got = append(got, c.ID+" "+string(c.Kind))
				if (c.Kind == Added) != (c.Old == nil) || (c.Kind == Removed) != (c.New == nil) {
					t.Errorf("%s %s: old %v new %v", c.ID, c.Kind, c.Old, c.New)
				}
			}
			if s := fmt.Sprint(got); s != tc.want {
				t.Fatalf("Diff = %s, want %s", s, tc.want)
			}
		})
	}
}
