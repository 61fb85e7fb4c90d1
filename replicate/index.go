package replicate

import (
	"cmp"
	"strings"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// The saver's chunk index (chunkIndex) is what a save needs to know of its
// base save's data chunks: where each one is, how many times the base uses
// it, and how many bytes of each pack it uses. It is kept across saves and
// updated with each committed save's changes, found by walking the base's
// chunks and the new ones side by side (locate), so that a small save's
// bookkeeping costs map operations for what changed, not for the graph.

// chunkPos is where a chunk starts in a save's records: in the header
// (rank 0), in node record `node` (rank 1) or in the trailer (rank 2), at
// byte off of that record. A save's chunks are in strictly increasing
// position order, as its records are sorted by node id.
type chunkPos struct {
	node string
	rank uint8
	off  int
}

func comparePos(a, b chunkPos) int {
	if a.rank != b.rank {
		return cmp.Compare(a.rank, b.rank)
	}
	if c := strings.Compare(a.node, b.node); c != 0 {
		return c
	}
	return cmp.Compare(a.off, b.off)
}

// posOf returns where chunk c of a plan of g starts.
func posOf(g *session.Graph, c chunker.PlannedChunk) chunkPos {
	switch {
	case c.First == 0:
		return chunkPos{rank: 0, off: c.Offset}
	case c.First > len(g.Nodes):
		return chunkPos{rank: 2, off: c.Offset}
	}
	return chunkPos{node: g.Nodes[c.First-1].ID, rank: 1, off: c.Offset}
}

// chunkIndex is the data chunks of a base save.
type chunkIndex struct {
	// locs is where each chunk of the base save is. It may also hold
	// chunks the base no longer uses: such a location counts only while
	// its pack is one the base references (based.packs), and then it is
	// as safe to reference as the base's own chunks, since gc keeps or
	// deletes whole packs.
	locs map[chunker.ID]manifest.Loc
	// refs is how many of the base's entries have each id.
	refs map[chunker.ID]int32
	// live is, for each pack, the bytes of the base's distinct data chunks
	// in it.
	live map[manifest.PackID]int64
	// entries and pos are the base's chunks in order and where each
	// starts, when this saver wrote the base; nil when it was loaded from
	// the store (then refs and live are empty and every chunk of the next
	// save is looked up in locs).
	entries []manifest.Entry
	pos     []chunkPos
	// tree is the TreeCache build of the base's tree (0: unknown).
	tree uint64
}

// located is how a save changes the base's refs and live bytes (locate).
type located struct {
	refs map[chunker.ID]int32
	live map[manifest.PackID]int64
	// changed counts the chunks added to the base's and removed from
	// them (0: the save's chunks are the base's); missing are the save's
	// chunks the base does not have.
	changed int
	missing []int
	// same[i] is the index of the base's entry that the save's entry i
	// equals, or -1 (a hint for the tree build).
	same []int32
}

// locate finds the save's chunks (entries, starting at pos) in b, setting
// the Loc of those b has (the others' stay zero): a chunk
// at the position where the base has the same chunk is where the base has
// it, without a map lookup; the others (added, changed) are looked up in
// b.idx.locs, and the base's chunks no longer at their position are
// removed from the counts.
func (b *based) locate(entries []manifest.Entry, pos []chunkPos) located {
	l := located{refs: map[chunker.ID]int32{}, live: map[manifest.PackID]int64{}, same: make([]int32, len(entries))}
	old, oldPos := b.idx.entries, b.idx.pos
	i, j := 0, 0
	for i < len(entries) || j < len(old) {
		var c int
		switch {
		case i == len(entries):
			c = 1
		case j == len(old):
			c = -1
		default:
			c = comparePos(pos[i], oldPos[j])
		}
		switch {
		case c == 0 && entries[i].ID == old[j].ID:
			entries[i].Loc = old[j].Loc
			l.same[i] = int32(j)
			i++
			j++
		case c == 0:
			l.remove(b, old[j])
			l.add(b, entries, i)
			l.same[i] = -1
			i++
			j++
		case c < 0:
			l.add(b, entries, i)
			l.same[i] = -1
			i++
		default:
			l.remove(b, old[j])
			j++
		}
	}
	return l
}

// add counts a use of chunk entries[i].ID, locating it in the base.
func (l *located) add(b *based, entries []manifest.Entry, i int) {
	l.changed++
	id := entries[i].ID
	n := b.idx.refs[id] + l.refs[id]
	l.refs[id]++
	loc, ok := b.idx.locs[id]
	if ok {
		_, ok = b.packs[loc.Pack]
	}
	if !ok {
		l.missing = append(l.missing, i) // uploaded by the save
		return
	}
	entries[i].Loc = loc
	if n == 0 {
		l.live[loc.Pack] += loc.Length
	}
}

// remove drops a use of the base's chunk e.
func (l *located) remove(b *based, e manifest.Entry) {
	l.changed++
	n := b.idx.refs[e.ID] + l.refs[e.ID]
	l.refs[e.ID]--
	if n == 1 {
		l.live[e.Loc.Pack] -= e.Loc.Length
	}
}

// liveBytes returns, for each pack of the base, the bytes of it the save
// would use: its distinct data chunks and the base's tree nodes.
func (l *located) liveBytes(b based) map[manifest.PackID]int64 {
	live := make(map[manifest.PackID]int64, len(b.idx.live)+len(l.live))
	for p, n := range b.idx.live {
		live[p] = n
	}
	for p, n := range l.live {
		live[p] += n
	}
	for p, n := range live {
		if n <= 0 {
			delete(live, p)
		}
	}
	for _, loc := range b.nodes {
		live[loc.Pack] += loc.Length
	}
	return live
}

// advance returns the index of a committed save made from base index ix:
// its chunks (entries, pos), located as l says plus the chunks it wrote
// (written), the packs it rewrote gone. It updates ix's maps in place.
func (ix chunkIndex) advance(l located, written map[chunker.ID]manifest.Loc, rewrite map[manifest.PackID]bool, entries []manifest.Entry, pos []chunkPos, tree uint64) chunkIndex {
	if ix.locs == nil {
		ix.locs = map[chunker.ID]manifest.Loc{}
	}
	if ix.refs == nil {
		ix.refs, ix.live = map[chunker.ID]int32{}, map[manifest.PackID]int64{}
	}
	for id, d := range l.refs {
		if n := ix.refs[id] + d; n > 0 {
			ix.refs[id] = n
		} else {
			delete(ix.refs, id)
		}
	}
	for p, d := range l.live {
		if n := ix.live[p] + d; n > 0 {
			ix.live[p] = n
		} else {
			delete(ix.live, p)
		}
	}
	for p := range rewrite {
		delete(ix.live, p) // every chunk of it the save uses was written
	}
	for id, loc := range written {
		ix.locs[id] = loc
		ix.live[loc.Pack] += loc.Length
	}
	ix.entries, ix.pos, ix.tree = entries, pos, tree
	if len(ix.locs) > 2*len(ix.refs)+4096 { // forget chunks long unused
		ix.locs = make(map[chunker.ID]manifest.Loc, len(ix.refs))
		for _, e := range entries {
			ix.locs[e.ID] = e.Loc
		}
	}
	return ix
}
