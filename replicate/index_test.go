package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// fromScratch returns the index of a save of entries (located) as a
// saver that loaded it would count it: every use of every chunk.
func fromScratch(entries []manifest.Entry) (map[chunker.ID]int32, map[manifest.PackID]int64) {
	refs, live := map[chunker.ID]int32{}, map[manifest.PackID]int64{}
	for _, e := range entries {
		refs[e.ID]++
		if refs[e.ID] == 1 {
			live[e.Loc.Pack] += e.Loc.Length
		}
	}
	return refs, live
}

// synthetic is a save of n chunks in 4 packs, some chunks repeated.
func synthetic(rng *rand.Rand, n int) ([]manifest.Entry, []chunkPos) {
	var entries []manifest.Entry
	var pos []chunkPos
	for i := range n {
		id := chunker.Sum(fmt.Appendf(nil, "chunk %d", rng.IntN(n*3/2)))
		loc := manifest.Loc{Pack: manifest.PackID{byte(id[0] % 4)}, Offset: int64(id[1]) << 8, Length: 100 + int64(id[2])}
		entries = append(entries, manifest.Entry{ID: id, Size: loc.Length, Loc: loc})
		pos = append(pos, chunkPos{node: fmt.Sprintf("n%05d", i), rank: 1})
	}
	return entries, pos
}

// locate, walking the base's chunks beside the new ones, finds the same
// locations and live bytes as looking every chunk up in a loaded base,
// whatever was removed, added, changed in place or repeated.
func TestLocateMatchesLookingUpEveryChunk(t *testing.T) {
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		old, oldPos := synthetic(rng, 1+rng.IntN(60))
		refs, live := fromScratch(old)
		base := based{idx: chunkIndex{locs: map[chunker.ID]manifest.Loc{}, refs: refs, live: live, entries: old, pos: oldPos},
			packs: map[manifest.PackID]int64{}}
		for _, e := range old {
			base.idx.locs[e.ID] = e.Loc
			base.packs[e.Loc.Pack] = 1 << 20
		}
		// The new save: the old one with chunks removed, inserted between
		// and changed in place (to one of the old chunks or a new one).
		var entries []manifest.Entry
		var pos []chunkPos
		for i, e := range old {
			switch rng.IntN(6) {
			case 0: // removed
				continue
			case 1: // changed in place
				e = old[rng.IntN(len(old))]
				if rng.IntN(2) == 0 {
					e.ID = chunker.Sum(fmt.Appendf(nil, "new %d %d", seed, i))
				}
			case 2: // a chunk inserted before it
				entries = append(entries, manifest.Entry{ID: old[rng.IntN(len(old))].ID})
				pos = append(pos, chunkPos{node: oldPos[i].node, rank: 0})
			}
			entries = append(entries, manifest.Entry{ID: e.ID, Size: e.Size})
			pos = append(pos, oldPos[i])
		}
		slices.SortStableFunc(pos, comparePos) // rank 0 sorts first: still ordered, ids stay with their index below
		walkedAt := slices.Clone(entries)
		walked := base.locate(walkedAt, pos)
		loaded := base
		loaded.idx = chunkIndex{locs: base.idx.locs}
		lookedAt := slices.Clone(entries)
		looked := loaded.locate(lookedAt, nil)
		if !slices.Equal(walkedAt, lookedAt) {
			t.Fatalf("seed %d: locations differ:\nwalked %v\nlooked %v", seed, walkedAt, lookedAt)
		}
		if got, want := walked.liveBytes(base), looked.liveBytes(loaded); !maps.Equal(got, want) {
			t.Fatalf("seed %d: live bytes %v, want %v", seed, got, want)
		}
	}
}

// checkIndex compares the saver's index of its last save with that save
// as read back from the store and counted from scratch.
func checkIndex(t *testing.T, st *flaky, sv *Saver) {
	t.Helper()
	ix := sv.reuse.idx
	stored, err := catalog.Entries(context.Background(), st, sv.baseM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, ix.entries) {
		t.Fatalf("save %s: the index's %d entries are not the %d stored", sv.baseM.ID, len(ix.entries), len(stored))
	}
	refs, live := fromScratch(stored)
	if !maps.Equal(refs, ix.refs) || !maps.Equal(live, ix.live) {
		t.Fatalf("save %s: index refs/live (%d/%v) differ from a count from scratch (%d/%v)", sv.baseM.ID, len(ix.refs), ix.live, len(refs), live)
	}
	for i, e := range stored {
		if ix.locs[e.ID] != e.Loc {
			t.Fatalf("save %s: chunk %s at %v, the index says %v", sv.baseM.ID, e.ID, e.Loc, ix.locs[e.ID])
		}
		if _, ok := sv.baseM.Packs[e.Loc.Pack]; !ok {
			t.Fatalf("save %s: chunk %d's pack %s is not in the manifest's packs", sv.baseM.ID, i, e.Loc.Pack)
		}
		if i > 0 && comparePos(ix.pos[i-1], ix.pos[i]) >= 0 {
			t.Fatalf("save %s: chunk positions %d and %d out of order: %v, %v", sv.baseM.ID, i-1, i, ix.pos[i-1], ix.pos[i])
		}
	}
}

// Saves of edits of every kind (changed, deleted, added, copies of other
// nodes' data, large nodes), with small packs so that compaction moves
// chunks: after each, the saver's index equals the save counted afresh.
func TestChunkIndexFollowsSaves(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	s := session.New()
	nodes := graphgen.Generate(3, 300)
	for _, nd := range nodes {
		if _, err := s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Data: nd.Data}); err != nil {
			t.Fatal(err)
		}
	}
	sv := New(s, Config{Store: st, Session: "ix", PackSize: 256 << 10, Logger: slog.New(slog.DiscardHandler)})
	rng := rand.New(rand.NewPCG(3, 3))
	moved := 0
	named := map[manifest.PackID]bool{} // by any save so far
	for round := range 40 {
		var base map[manifest.PackID]int64
		if sv.baseM != nil {
			base = sv.baseM.Packs
		}
		for range 1 + rng.IntN(6) {
			nd := nodes[rng.IntN(len(nodes))]
			var err error
			switch rng.IntN(4) {
			case 0:
				err = s.Delete(admin, nd.ID)
			case 1: // a copy of another node's data: a repeated chunk
				other := nodes[rng.IntN(len(nodes))]
				_, err = s.Put(admin, fmt.Sprintf("copy%d", rng.IntN(20)), session.NodeInput{Type: other.Type, Data: other.Data})
			default:
				changed, _ := graphgen.Mutate([]graphgen.Node{nd}, rng.Uint64(), 1)
				_, err = s.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Data: changed[0].Data})
			}
			if err != nil && !errors.Is(err, session.ErrNotFound) {
				t.Fatal(err)
			}
		}
		r, err := sv.Save(ctx, "api")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if r.Unchanged {
			continue
		}
		checkIndex(t, st, sv)
		moved += sv.lastMoved
		// gc's rule for savers (gc/doc.go (b)): a save references packs
		// it uploaded and packs its base names, no other older pack.
		for p := range sv.baseM.Packs {
			if _, inBase := base[p]; named[p] && !inBase {
				t.Fatalf("round %d: save %s references pack %s of an older save, which its base does not name", round, sv.baseM.ID, p)
			}
		}
		for p := range sv.baseM.Packs {
			named[p] = true
		}
	}
	if moved == 0 {
		t.Error("no save moved chunks: compaction was not exercised")
	}
}

// Edits that undo each other (a node added, then deleted) make no save, whether the saver compares the
// chunks of its last save (at hand) or the content hash of a save it was
// primed with; a different content is saved on both ways.
func TestUndoneEditsSaveNothing(t *testing.T) {
	ctx := context.Background()
	for _, primed := range []bool{false, true} {
		st := newStore(t)
		s := session.New()
		fill(t, s, 50, 3000, 4)
		sv, _ := newSaver(t, s, st)
		r1, err := sv.Save(ctx, "api")
		if err != nil {
			t.Fatal(err)
		}
		if primed {
			m, err := catalog.Load(ctx, st, "test", r1.ID)
			if err != nil {
				t.Fatal(err)
			}
			sv, _ = newSaver(t, s, st)
			sv.Prime(m)
			sv.MarkDirty()
		}
		if _, err := s.Put(admin, "tmp", session.NodeInput{Type: "object", Data: []byte("tmp")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(admin, "tmp"); err != nil {
			t.Fatal(err)
		}
		if r, err := sv.Save(ctx, "api"); err != nil || !r.Unchanged || r.ID != r1.ID {
			t.Fatalf("primed %t: a node added and deleted: %+v %v", primed, r, err)
		}
		if _, err := s.Put(admin, "tmp", session.NodeInput{Type: "object", Data: []byte("tmp")}); err != nil {
			t.Fatal(err)
		}
		if r, err := sv.Save(ctx, "api"); err != nil || r.Unchanged {
			t.Fatalf("primed %t: a changed node: %+v %v", primed, r, err)
		}
		checkIndex(t, st, sv) // built from a base read from the store when primed
	}
}

// A save whose new chunks repeat (two new large nodes with the same data:
// their pieces after the first are the same chunks) stores each once and
// locates every repeat.
func TestRepeatedNewChunks(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	s := session.New()
	fill(t, s, 20, 3000, 5)
	sv, _ := newSaver(t, s, st)
	if _, err := sv.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 300<<10)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for _, id := range []string{"big-a", "big-b"} {
		if _, err := s.Put(admin, id, session.NodeInput{Type: "mesh", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sv.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if sv.lastRepeats == 0 {
		t.Fatal("the save stored no repeated chunk: the test does not test repeats")
	}
	checkIndex(t, st, sv)
}
