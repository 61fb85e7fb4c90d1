package manifest

import (
	"slices"

	"github.com/pitr-dev/pitr/chunker"
)

// TreeCache remembers the nodes of the last tree built through it, so that
// building the next save's tree encodes and hashes only the nodes whose
// entries changed: a save that changes one node re-encodes one node per
// level. It holds a copy of every node's entries and bytes (a few hundred
// bytes per tree node). The zero value is ready to use; a TreeCache is not
// safe for concurrent use.
type TreeCache struct {
	nodes map[treeCacheKey]*cachedNode
	gen   uint64
	level []TreeEntry // the last build's leaves as entries of their parents, reused
	// leaves are the last build's leaves by the index of their first
	// entry, built are this build's; same and since are the hints of
	// BuildSince.
	leaves, built []cachedLeaf
	same          []int32
	since         uint64
}

type cachedLeaf struct {
	start int
	node  *cachedNode
}

// treeCacheKey finds a candidate for a node: its level, first entry and
// number of entries. The candidate is used only if all its entries equal.
type treeCacheKey struct {
	level int
	first chunker.ID
	n     int
}

type cachedNode struct {
	entries []TreeEntry // above the leaves
	leaf    []Entry     // of a leaf
	id      chunker.ID
	raw     []byte
	gen     uint64 // the last build that used it
}

// Build is BuildTree, reusing the nodes of c's last build whose entries
// are unchanged (their id and bytes are given to place as if encoded
// afresh) and remembering this tree's nodes for the next build.
func (c *TreeCache) Build(entries []Entry, place Placer) (TreeRef, error) {
	return c.BuildSince(entries, 0, nil, place)
}

// Gen identifies the last build (0: none).
func (c *TreeCache) Gen() uint64 { return c.gen }

// BuildSince is Build told which entries are those of build since (a Gen):
// same[i] ≥ 0 says that entries[i] equals entry same[i] of that build. A
// leaf whose entries are, in order, those of a leaf of build since is
// then reused without comparing its entries. The hints are used only when
// since is c's last build.
func (c *TreeCache) BuildSince(entries []Entry, since uint64, same []int32, place Placer) (TreeRef, error) {
	if c.nodes == nil {
		c.nodes = map[treeCacheKey]*cachedNode{}
	}
	c.same, c.since = nil, 0
	if since != 0 && since == c.gen && len(same) == len(entries) {
		c.same, c.since = same, since
	}
	c.gen++
	c.built = c.built[:0]
	ref, err := buildTree(entries, place, (*treeCacheEncoder)(c), &c.level)
	for k, n := range c.nodes {
		if n.gen != c.gen {
			delete(c.nodes, k)
		}
	}
	c.leaves, c.built = c.built, c.leaves
	c.same = nil
	return ref, err
}

// treeCacheEncoder is a TreeCache as the nodeEncoder of a build.
type treeCacheEncoder TreeCache

// leaf returns the id and bytes of the leaf with entries es (from
// entries[start]), from the cache when it holds a leaf with equal entries:
// found by the hints of BuildSince, else by its key and compared.
func (c *treeCacheEncoder) leaf(start int, es []Entry) (chunker.ID, []byte) {
	n := c.hinted(start, len(es))
	if n == nil {
		k := treeCacheKey{level: 0, first: es[0].ID, n: len(es)}
		if n = c.nodes[k]; n == nil || !slices.Equal(n.leaf, es) {
			id, raw := encodeNode(0, asLeaf(es))
			n = &cachedNode{leaf: slices.Clone(es), id: id, raw: raw}
			c.nodes[k] = n
		}
	}
	n.gen = c.gen
	c.built = append(c.built, cachedLeaf{start: start, node: n})
	return n.id, n.raw
}

// hinted returns the last build's leaf whose entries are, by the hints,
// those from entries[start] on, n of them; nil if there is none.
func (c *treeCacheEncoder) hinted(start, n int) *cachedNode {
	if c.same == nil {
		return nil
	}
	j := c.same[start]
	if j < 0 {
		return nil
	}
	k, ok := slices.BinarySearchFunc(c.leaves, int(j), func(l cachedLeaf, start int) int { return l.start - start })
	if !ok || len(c.leaves[k].node.leaf) != n {
		return nil
	}
	for i, s := range c.same[start : start+n] {
		if s != j+int32(i) {
			return nil
		}
	}
	return c.leaves[k].node
}

// node returns the id and bytes of the node at level lv with entries es,
// from the cache when it holds a node with equal entries.
func (c *treeCacheEncoder) node(lv int, es []TreeEntry) (chunker.ID, []byte) {
	k := treeCacheKey{level: lv, first: es[0].ID, n: len(es)}
	if n := c.nodes[k]; n != nil && slices.Equal(n.entries, es) {
		n.gen = c.gen
		return n.id, n.raw
	}
	id, raw := encodeNode(lv, es)
	c.nodes[k] = &cachedNode{entries: slices.Clone(es), id: id, raw: raw, gen: c.gen}
	return id, raw
}
