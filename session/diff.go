package session

import (
	"bytes"
	"slices"
)

// ChangeKind says how a node differs between two graphs.
type ChangeKind string

// The kinds of Change.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is one node that differs between two graphs. Old is nil for an
// added node, New for a removed one.
type Change struct {
	ID   string
	Kind ChangeKind
	Old  *Node
	New  *Node
}

// Diff lists the nodes that differ from a to b, sorted by id. Nodes are
// compared by content (type, owner, deps, data), not by version: a node put
// again with the same content is no change. Both graphs' nodes must be
// sorted by id, as Snapshot and Decode give them; a nil graph is empty.
func Diff(a, b *Graph) []Change {
	var an, bn []*Node
	if a != nil {
		an = a.Nodes
	}
	if b != nil {
		bn = b.Nodes
	}
	var out []Change
	i, j := 0, 0
	for i < len(an) || j < len(bn) {
		switch {
		case j == len(bn) || (i < len(an) && an[i].ID < bn[j].ID):
			out = append(out, Change{ID: an[i].ID, Kind: Removed, Old: an[i]})
			i++
		case i == len(an) || bn[j].ID < an[i].ID:
			out = append(out, Change{ID: bn[j].ID, Kind: Added, New: bn[j]})
			j++
		default:
			if !SameContent(an[i], bn[j]) {
				out = append(out, Change{ID: an[i].ID, Kind: Changed, Old: an[i], New: bn[j]})
			}
			i++
			j++
		}
	}
	return out
}

// SameContent reports whether two nodes hold the same type, owner, deps and
// data (their versions may differ).
func SameContent(x, y *Node) bool {
	return x.Type == y.Type && x.Owner == y.Owner && slices.Equal(x.Deps, y.Deps) && bytes.Equal(x.Data, y.Data)
}
