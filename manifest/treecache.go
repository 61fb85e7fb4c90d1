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
	if c.nodes == nil {
		c.nodes = map[treeCacheKey]*cachedNode{}
	}
	c.gen++
	ref, err := buildTree(entries, place, (*treeCacheEncoder)(c), &c.level)
	for k, n := range c.nodes {
		if n.gen != c.gen {
			delete(c.nodes, k)
		}
	}
	return ref, err
}

// treeCacheEncoder is a TreeCache as the nodeEncoder of a build.
type treeCacheEncoder TreeCache

// leaf returns the id and bytes of the leaf with entries es, from the
// cache when it holds a leaf with equal entries.
func (c *treeCacheEncoder) leaf(es []Entry) (chunker.ID, []byte) {
	k := treeCacheKey{level: 0, first: es[0].ID, n: len(es)}
	if n := c.nodes[k]; n != nil && slices.Equal(n.leaf, es) {
		n.gen = c.gen
		return n.id, n.raw
	}
	id, raw := encodeNode(0, asLeaf(es))
	c.nodes[k] = &cachedNode{leaf: slices.Clone(es), id: id, raw: raw, gen: c.gen}
	return id, raw
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
