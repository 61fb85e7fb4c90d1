package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/pitr-dev/pitr/chunker"
)

// TreeFormat names the chunk tree format of a format 2 manifest.
const TreeFormat = "pitr-tree-1"

// Limits of the tree format.
const (
	// MaxTreeEntries is the most entries one tree node holds.
	MaxTreeEntries = 1024
	// MaxTreeLevels is the deepest tree a reader accepts.
	MaxTreeLevels = 12
	// MaxKeyLen is the longest key (node id) an entry carries.
	MaxKeyLen = 1024
)

// Tree node format "pitr-tree-1". A save's data chunks, in graph order,
// are the entries of its leaves (level 0); each node above lists its
// children. Nodes are chunks like any other: content-addressed,
// lz4-framed, stored in packs. All integers are unsigned varints:
//
//	magic "PTRE" | version 1 (byte) | level (byte)
//	npacks | npacks × pack id (16 bytes)
//	count (1..MaxTreeEntries)
//	count × entry:
//	  id (32 bytes) | size
//	  [level > 0] chunks
//	  pack index | offset | length
//	  key length | key
//	  [level 0, key length > 0] start
//
// At level 0 an entry is a data chunk: its raw size, where its frame is
// stored, the first node record starting in it (Entry.Key, Entry.Start).
// Above, an entry is a child node: the raw bytes and data chunks under it,
// where the child node is stored, and the first key under it. Keys that
// are present increase strictly through the tree, so a reader finds the
// chunk holding a node by descending from the root.
//
// Boundaries are content-defined, so a save that changes a few chunks
// rewrites only the nodes on their paths to the root: a leaf ends after a
// data chunk whose id's last 8 bytes, as a big-endian integer h, satisfy
// h mod 16 = 0; a node of level k ≥ 1 ends after a child whose last data
// chunk satisfies h mod 16^(k+1) = 0. Any node also ends at
// MaxTreeEntries entries, and a level of at most 16 children above the
// leaves is the root. The boundaries are the writer's choice, not part of
// what a reader checks: trees written with leaves of h mod 32 (before
// 2026-11-29) read the same. Leaves of 16 entries against 32 cut the median
// metadata of a 1-node save at 20,000 nodes from 8.3 to 5.3 KB (the tree
// keeps 4 levels there).
const (
	treeMagic     = "PTRE"
	treeVersion   = 1
	leafEvery     = 16
	interiorEvery = 16
)

// TreeNode is one decoded tree node.
type TreeNode struct {
	Level int
	// Entries are data chunks (Level 0) or children. For a child, Size is
	// the raw bytes under it, Chunks the data chunks under it, Loc where
	// the child node is stored and Key the first key under it.
	Entries []TreeEntry
}

// TreeEntry is one entry of a tree node.
type TreeEntry struct {
	Entry
	// Chunks is the number of data chunks under a child (0 at level 0).
	Chunks int64
}

// TreeRef is a format 2 manifest's pointer to its chunk tree.
type TreeRef struct {
	// Format is TreeFormat.
	Format string `json:"format"`
	// Root is the id of the root node.
	Root chunker.ID `json:"root"`
	// RootLoc is where the root node is stored.
	RootLoc Loc `json:"root_loc"`
	// Levels is the number of levels (1: the root is a leaf).
	Levels int `json:"levels"`
	// Chunks is the number of data chunks in the save.
	Chunks int64 `json:"chunks"`
	// Nodes is the number of tree nodes.
	Nodes int `json:"nodes"`
}

func (t *TreeRef) validate(bad func(string, ...any) error) error {
	switch {
	case t.Format != TreeFormat:
		return bad("tree.format %q, want %q", clip(t.Format), TreeFormat)
	case t.Levels < 1 || t.Levels > MaxTreeLevels:
		return bad("tree.levels %d out of range 1..%d", t.Levels, MaxTreeLevels)
	case t.Chunks < 1:
		return bad("tree.chunks %d: a save has at least one chunk", t.Chunks)
	case t.Nodes < t.Levels:
		return bad("tree.nodes %d is less than its %d levels", t.Nodes, t.Levels)
	case t.Root.IsZero():
		return bad("tree.root missing")
	}
	return nil
}

// EncodeTreeNode returns the raw bytes of a tree node. It does not check
// the format's rules (BuildTree only makes valid nodes; DecodeTreeNode
// checks every node read).
func EncodeTreeNode(n *TreeNode) []byte {
	var packs []PackID
	index := map[PackID]uint64{}
	for _, e := range n.Entries {
		if _, ok := index[e.Loc.Pack]; !ok {
			index[e.Loc.Pack] = uint64(len(packs))
			packs = append(packs, e.Loc.Pack)
		}
	}
	b := make([]byte, 0, 16+len(packs)*20+len(n.Entries)*64)
	b = append(b, treeMagic...)
	b = append(b, treeVersion, byte(n.Level))
	b = binary.AppendUvarint(b, uint64(len(packs)))
	for _, p := range packs {
		b = append(b, p[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(n.Entries)))
	for _, e := range n.Entries {
		b = append(b, e.ID[:]...)
		b = binary.AppendUvarint(b, uint64(e.Size))
		if n.Level > 0 {
			b = binary.AppendUvarint(b, uint64(e.Chunks))
		}
		b = binary.AppendUvarint(b, index[e.Loc.Pack])
		b = binary.AppendUvarint(b, uint64(e.Loc.Offset))
		b = binary.AppendUvarint(b, uint64(e.Loc.Length))
		b = binary.AppendUvarint(b, uint64(len(e.Key)))
		b = append(b, e.Key...)
		if n.Level == 0 && e.Key != "" {
			b = binary.AppendUvarint(b, uint64(e.Start))
		}
	}
	return b
}

// treeReader reads the varint fields of a tree node.
type treeReader struct {
	b   []byte
	off int
	err error
}

func (r *treeReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("decode tree node: %w: at byte %d: %s", ErrBadList, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *treeReader) uvarint(what string, lo, hi uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("%s: truncated or overlong varint", what)
		return 0
	}
	r.off += n
	if v < lo || v > hi {
		r.fail("%s %d out of range %d..%d", what, v, lo, hi)
		return 0
	}
	return v
}

func (r *treeReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.fail("%s: truncated (%d bytes, need %d)", what, len(r.b)-r.off, n)
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

// maxVarint bounds sizes and offsets (2^53: exact in JSON and float64).
const maxVarint = 1 << 53

// DecodeTreeNode parses one tree node (its raw bytes). It is strict: any
// field out of range, a location outside its pack, keys not increasing, an
// unused pack or trailing bytes is an error wrapping ErrBadList.
func DecodeTreeNode(raw []byte) (*TreeNode, error) {
	r := &treeReader{b: raw}
	if m := r.bytes("magic", len(treeMagic)); r.err == nil && string(m) != treeMagic {
		r.fail("bad magic %q", m)
	}
	hdr := r.bytes("header", 2)
	if r.err != nil {
		return nil, r.err
	}
	if hdr[0] != treeVersion {
		r.fail("version %d, want %d", hdr[0], treeVersion)
	}
	n := &TreeNode{Level: int(hdr[1])}
	if n.Level >= MaxTreeLevels {
		r.fail("level %d, max %d", n.Level, MaxTreeLevels-1)
	}
	npacks := int(r.uvarint("pack count", 1, MaxTreeEntries))
	packs := make([]PackID, npacks)
	seen := map[PackID]bool{}
	for i := range packs {
		copy(packs[i][:], r.bytes("pack id", len(PackID{})))
		if r.err == nil && (packs[i].IsZero() || seen[packs[i]]) {
			r.fail("pack %d: zero or repeated id %s", i, packs[i])
		}
		seen[packs[i]] = true
	}
	count := int(r.uvarint("entry count", 1, MaxTreeEntries))
	used := make([]bool, npacks)
	lastKey := ""
	for i := 0; i < count && r.err == nil; i++ {
		e := decodeTreeEntry(r, n.Level, packs, used)
		if e.Key != "" {
			if lastKey != "" && e.Key <= lastKey {
				r.fail("entry %d: key %q does not follow %q", i, clip(e.Key), clip(lastKey))
			}
			lastKey = e.Key
		}
		n.Entries = append(n.Entries, e)
	}
	for i, u := range used {
		if r.err == nil && !u {
			r.fail("pack %s is listed but no entry is in it", packs[i])
		}
	}
	if r.err == nil && r.off != len(raw) {
		r.fail("%d trailing bytes", len(raw)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return n, nil
}

func decodeTreeEntry(r *treeReader, level int, packs []PackID, used []bool) TreeEntry {
	var e TreeEntry
	copy(e.ID[:], r.bytes("chunk id", len(chunker.ID{})))
	if level == 0 {
		e.Size = int64(r.uvarint("chunk size", 1, chunker.MaxChunkSize))
	} else {
		e.Size = int64(r.uvarint("size", 1, maxVarint))
		e.Chunks = int64(r.uvarint("chunks", 1, maxVarint))
	}
	p := int(r.uvarint("pack index", 0, uint64(len(packs)-1)))
	off := int64(r.uvarint("offset", 0, maxVarint))
	length := int64(r.uvarint("length", 1, maxVarint))
	key := r.bytes("key", int(r.uvarint("key length", 0, MaxKeyLen)))
	if r.err != nil {
		return e
	}
	e.Loc = Loc{Pack: packs[p], Offset: off, Length: length}
	used[p] = true
	if !utf8.Valid(key) {
		r.fail("entry %s: key is not UTF-8", e.ID)
	}
	e.Key = string(key)
	if level == 0 && e.Key != "" {
		e.Start = int64(r.uvarint("start", 0, uint64(e.Size-1)))
	}
	return e
}

// ContentSHA256 is the hex SHA-256 of a save's data chunk list (each
// chunk's id and raw size, in order): it identifies the graph's content
// without hashing the graph, and is the same whatever packs hold it. It
// reads only the entries' ID and Size fields: another goroutine may set
// their Loc meanwhile.
func ContentSHA256(entries []Entry) string {
	const item = len(chunker.ID{}) + 8
	h := sha256.New()
	buf := make([]byte, 0, 256*item) // hashed in batches: one Write per item is slower
	for i := range entries {
		e := &entries[i]
		buf = append(buf, e.ID[:]...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.Size))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// Placer stores a tree node (its id and raw bytes) and returns where it is.
// BuildTree calls it bottom-up, so a node's children are placed before it.
type Placer func(id chunker.ID, raw []byte) (Loc, error)

// BuildTree builds the chunk tree of a save's data chunks (in graph order,
// each with its Loc, Key and Start set) and returns the manifest's
// reference to it. Every entry must be valid for a leaf (size in
// 1..chunker.MaxChunkSize, a pack location, keys increasing).
func BuildTree(entries []Entry, place Placer) (TreeRef, error) {
	return buildTree(entries, place, plainEncoder{}, nil)
}

// nodeEncoder returns the id and bytes of tree nodes: leaves (level 0,
// data chunk entries) and nodes above them.
type nodeEncoder interface {
	leaf(start int, es []Entry) (chunker.ID, []byte) // es = entries[start:start+len(es)]
	node(lv int, es []TreeEntry) (chunker.ID, []byte)
}

// plainEncoder encodes every node.
type plainEncoder struct{}

func (plainEncoder) leaf(_ int, es []Entry) (chunker.ID, []byte) { return encodeNode(0, asLeaf(es)) }

func (plainEncoder) node(lv int, es []TreeEntry) (chunker.ID, []byte) { return encodeNode(lv, es) }

// asLeaf returns data chunk entries as a leaf's entries.
func asLeaf(es []Entry) []TreeEntry {
	out := make([]TreeEntry, len(es))
	for i, e := range es {
		out[i] = TreeEntry{Entry: e}
	}
	return out
}

// encodeNode returns the id and bytes of a tree node at level lv.
func encodeNode(lv int, es []TreeEntry) (chunker.ID, []byte) {
	raw := EncodeTreeNode(&TreeNode{Level: lv, Entries: es})
	return chunker.Sum(raw), raw
}

// buildTree is BuildTree with the node encoding given (see TreeCache) and
// a buffer for the leaves' entries in their parents, which it returns.
func buildTree(entries []Entry, place Placer, enc nodeEncoder, buf *[]TreeEntry) (TreeRef, error) {
	if len(entries) == 0 {
		return TreeRef{}, fmt.Errorf("build chunk tree: %w: no chunks", ErrInvalid)
	}
	ref := TreeRef{Format: TreeFormat, Chunks: int64(len(entries))}
	var up []TreeEntry
	if buf != nil {
		up = (*buf)[:0]
	}
	level, lasts, err := buildLeaves(entries, place, enc, &ref, up)
	if buf != nil {
		*buf = level
	}
	every := uint64(leafEvery) * interiorEvery
	for lv := 1; err == nil && len(level) > 1; lv++ {
		if ref.Levels == MaxTreeLevels {
			return TreeRef{}, fmt.Errorf("build chunk tree: %w: more than %d levels", ErrInvalid, MaxTreeLevels)
		}
		var up []TreeEntry
		var upLasts []uint64
		// A level of at most interiorEvery entries above the leaves is the
		// root, whatever its boundaries: a rare chunk id with many zero
		// bits would otherwise stack levels of two nodes each.
		small := len(level) <= interiorEvery
		for start := 0; start < len(level); {
			end := start + 1
			for end < len(level) && end-start < MaxTreeEntries && (small || lasts[end-1]%every != 0) {
				end++
			}
			node := &TreeNode{Level: lv, Entries: level[start:end]}
			id, raw := enc.node(lv, node.Entries)
			loc, perr := place(id, raw)
			if perr != nil {
				return TreeRef{}, fmt.Errorf("build chunk tree: place node %s: %w", id, perr)
			}
			ref.Nodes++
			up = append(up, childEntry(id, loc, node))
			upLasts = append(upLasts, lasts[end-1])
			start = end
		}
		ref.Levels = lv + 1
		level, lasts = up, upLasts
		every *= interiorEvery
	}
	if err != nil {
		return TreeRef{}, err
	}
	ref.Root, ref.RootLoc = level[0].ID, level[0].Loc
	return ref, nil
}

// buildLeaves places the leaves over entries and returns their parents'
// entries (appended to up[:0]) and, for each, the boundary hash of its last
// data chunk.
func buildLeaves(entries []Entry, place Placer, enc nodeEncoder, ref *TreeRef, up []TreeEntry) ([]TreeEntry, []uint64, error) {
	estimate := len(entries)/leafEvery*5/4 + 1
	up = slices.Grow(up[:0], estimate)
	upLasts := make([]uint64, 0, estimate)
	for start := 0; start < len(entries); {
		end := start + 1
		for end < len(entries) && end-start < MaxTreeEntries && boundaryHash(entries[end-1].ID)%leafEvery != 0 {
			end++
		}
		es := entries[start:end]
		id, raw := enc.leaf(start, es)
		loc, err := place(id, raw)
		if err != nil {
			return nil, nil, fmt.Errorf("build chunk tree: place node %s: %w", id, err)
		}
		ref.Nodes++
		c := TreeEntry{Entry: Entry{ID: id, Loc: loc}, Chunks: int64(len(es))}
		for _, e := range es {
			c.Size += e.Size
			if c.Key == "" {
				c.Key = e.Key
			}
		}
		up = append(up, c)
		upLasts = append(upLasts, boundaryHash(es[len(es)-1].ID))
		start = end
	}
	ref.Levels = 1
	return up, upLasts, nil
}

// childEntry is the parent's entry for node n, stored as id at loc.
func childEntry(id chunker.ID, loc Loc, n *TreeNode) TreeEntry {
	c := TreeEntry{Entry: Entry{ID: id, Loc: loc}}
	for _, e := range n.Entries {
		c.Size += e.Size
		if n.Level == 0 {
			c.Chunks++
		} else {
			c.Chunks += e.Chunks
		}
		if c.Key == "" {
			c.Key = e.Key
		}
	}
	return c
}

// boundaryHash is the integer the tree's boundaries test: the last 8 bytes
// of a chunk id (the first ones decide SplitRecords' groups).
func boundaryHash(id chunker.ID) uint64 {
	return binary.BigEndian.Uint64(id[len(id)-8:])
}

// SearchKey returns the index of the entry of n under which a node with id
// key has its record, by the keys: the last entry whose key is at or
// before key, or -1 when key comes before every keyed entry (the node
// then has no record in n). Entries without a key belong with the keyed
// entry before them.
func (n *TreeNode) SearchKey(key string) int {
	found := -1
	for i, e := range n.Entries {
		if e.Key == "" {
			continue
		}
		if e.Key > key {
			break
		}
		found = i
	}
	return found
}
