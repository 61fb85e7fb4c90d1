package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
)

func TestPlanMergesRangesOfAPack(t *testing.T) {
	p, q := manifest.PackID{1}, manifest.PackID{2}
	ref := func(pack manifest.PackID, off, n int64) Ref {
		return Ref{ID: chunker.Sum(fmt.Appendf(nil, "%s %d", pack, off)), Loc: manifest.Loc{Pack: pack, Offset: off, Length: n}}
	}
	refs := []Ref{
		ref(p, 0, 100), ref(p, 100, 100), // adjacent: one read
		ref(p, 200+MaxGap, 50),                  // a gap of MaxGap: same read
		ref(p, 250+2*MaxGap+1, 10),              // a gap beyond MaxGap: a new read
		ref(q, 0, MaxRead), ref(q, MaxRead, 10), // past MaxRead: a new read
		{ID: chunker.Sum([]byte("own"))}, // a format 1 chunk: its own object
	}
	reads := plan(refs, readOpts{})
	var shapes [][3]int64
	for _, r := range reads {
		shapes = append(shapes, [3]int64{r.off, r.length, int64(len(r.refs))})
	}
	want := [][3]int64{{0, 0, 1}, {0, 250 + MaxGap, 3}, {250 + 2*MaxGap + 1, 10, 1}, {0, MaxRead, 1}, {MaxRead, 10, 1}}
	if !slices.Equal(shapes, want) {
		t.Errorf("reads (offset, length, chunks) %v, want %v", shapes, want)
	}
	// With a cache, a small pack is read whole and a range reaches back by
	// the window.
	reads = plan(refs[:4], readOpts{cache: newSpans(), sizes: map[manifest.PackID]int64{p: WholePack}})
	if len(reads) != 1 || reads[0].off != 0 || reads[0].length != WholePack || !reads[0].keep {
		t.Errorf("small pack: %+v", reads)
	}
	reads = plan([]Ref{ref(q, 5*TreeWindow, 10)}, readOpts{cache: newSpans(), window: TreeWindow})
	if len(reads) != 1 || reads[0].off != 4*TreeWindow+10 || reads[0].length != TreeWindow || !reads[0].keep {
		t.Errorf("window: %+v", reads)
	}
}

// saveOf stores chunks of data in one pack and a tree over them, and
// returns the manifest of that save.
func saveOf(t *testing.T, st *file.Store, datas [][]byte) (*manifest.Manifest, []byte) {
	t.Helper()
	return saveInPacks(t, st, datas, 1)
}

// saveInPacks stores datas as a save whose chunks are spread over n packs
// in turn, its tree nodes in the last one.
func saveInPacks(t *testing.T, st *file.Store, datas [][]byte, n int) (*manifest.Manifest, []byte) {
	t.Helper()
	packs := make([][]byte, n)
	ids := make([]manifest.PackID, n)
	for i := range ids {
		ids[i] = manifest.NewPackID()
	}
	place := func(k int, raw []byte) manifest.Loc {
		frame, err := chunker.Compress(raw)
		if err != nil {
			t.Fatal(err)
		}
		l := manifest.Loc{Pack: ids[k], Offset: int64(len(packs[k])), Length: int64(len(frame))}
		packs[k] = append(packs[k], frame...)
		return l
	}
	var entries []manifest.Entry
	var graph []byte
	for i, d := range datas {
		entries = append(entries, manifest.Entry{ID: chunker.Sum(d), Size: int64(len(d)), Loc: place(i%n, d)})
		graph = append(graph, d...)
	}
	tree, err := manifest.BuildTree(entries, func(id chunker.ID, raw []byte) (manifest.Loc, error) { return place(n-1, raw), nil })
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[manifest.PackID]int64{}
	for k, p := range ids {
		if err := st.Put(context.Background(), manifest.PackKey(p), packs[k]); err != nil {
			t.Fatal(err)
		}
		sizes[p] = int64(len(packs[k]))
	}
	id := manifest.NewID(time.Now())
	at, err := manifest.IDTime(id)
	if err != nil {
		t.Fatal(err)
	}
	return &manifest.Manifest{FormatVersion: manifest.FormatVersion, Session: "s", ID: id, Time: at,
		BytesTotal: int64(len(graph)), ContentSHA256: manifest.ContentSHA256(entries), Tree: &tree,
		Packs: sizes}, graph
}

// A save of at most WholeSave bytes of packs is read with one GET per pack
// and nothing else, however its chunks and tree nodes are spread; a larger
// one by ranges.
func TestGraphReadsASmallSaveOnePackEach(t *testing.T) {
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, want := saveInPacks(t, fst, randomChunks(6000), 4) // 4 packs of ~2.3 MB, over WholePack
	st := counting.New(fst)
	got, _, err := Graph(context.Background(), st, m, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("graph differs")
	}
	c := st.Snapshot()
	if c.Requests() != 4 || c.Gets != 4 || m.Tree.Levels < 2 {
		t.Errorf("a %d-level tree over 4 packs: %+v, want 4 whole GETs and nothing else", m.Tree.Levels, c)
	}
}

func randomChunks(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, 1000+r.IntN(1000))
		for j := range out[i] {
			out[i][j] = byte(r.UintN(256))
		}
	}
	return out
}

// A whole save's tree and data come in a handful of ranged reads: the tree
// nodes, written at the end of the pack, with one read back from the root.
func TestGraphReadsASaveInFewRequests(t *testing.T) {
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, want := saveOf(t, fst, randomChunks(3000))
	st := counting.New(fst)
	got, entries, err := Graph(context.Background(), st, m, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || len(entries) != 3000 {
		t.Fatalf("graph of %d bytes, %d entries; want %d bytes, 3000", len(got), len(entries), len(want))
	}
	if n := st.Snapshot().Requests(); n > 3 || m.Tree.Levels < 2 {
		t.Errorf("a %d-level tree and %d bytes of data in one pack of %d bytes: %d requests, want at most 3",
			m.Tree.Levels, len(want), m.Packs[m.Tree.RootLoc.Pack], n)
	}
}

func TestGraphFindsDamage(t *testing.T) {
	ctx := context.Background()
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveOf(t, fst, randomChunks(200))
	entries, err := Entries(ctx, fst, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := manifest.PackKey(m.Tree.RootLoc.Pack)
	pack, err := fst.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	victim := entries[77]
	bad := bytes.Clone(pack)
	bad[victim.Loc.Offset+victim.Loc.Length/2] ^= 0xff
	if err := fst.Put(ctx, key, bad); err != nil {
		t.Fatal(err)
	}
	_, _, err = Graph(ctx, fst, m, 4, nil)
	var ce *ChunkError
	if !errors.Is(err, chunker.ErrCorrupt) || !errors.As(err, &ce) || ce.Ref.ID != victim.ID ||
		!strings.Contains(err.Error(), m.ID) || !strings.Contains(err.Error(), victim.Loc.Pack.String()) {
		t.Fatalf("a damaged chunk: %v; want it, its pack and the save named", err)
	}
	if err := fst.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Graph(ctx, fst, m, 4, nil); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), key) {
		t.Fatalf("a missing pack: %v", err)
	}
}

func TestSpans(t *testing.T) {
	c := newSpans()
	p := manifest.PackID{9}
	c.put(p, 100, []byte("0123456789"))
	if got := c.get(manifest.Loc{Pack: p, Offset: 103, Length: 4}); string(got) != "3456" {
		t.Errorf("inside: %q", got)
	}
	for _, l := range []manifest.Loc{{Pack: p, Offset: 99, Length: 2}, {Pack: p, Offset: 108, Length: 3}, {Pack: manifest.PackID{8}, Offset: 100, Length: 1}} {
		if got := c.get(l); got != nil {
			t.Errorf("outside %v: %q", l, got)
		}
	}
}

// A chunk that appears many times in a save is decoded once and copied to
// each of its places; progress counts each place once.
func TestGraphRepeatedChunks(t *testing.T) {
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	datas := randomChunks(100)
	same := bytes.Repeat([]byte("the same chunk "), 300)
	for i := range 300 {
		datas = append(datas[:i%len(datas)], append([][]byte{same}, datas[i%len(datas):]...)...)
	}
	m, want := saveOf(t, fst, datas)
	var done, total int64
	got, entries, err := Graph(context.Background(), fst, m, 4, func(d, t int64) { done, total = d, t })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) || len(entries) != len(datas) {
		t.Fatalf("graph of %d bytes, %d entries; want %d bytes, %d", len(got), len(entries), len(want), len(datas))
	}
	if done != total || total != int64(len(want)) {
		t.Errorf("progress ended at %d of %d, want %d of %d", done, total, len(want), len(want))
	}
}

// ReadChunks gives each distinct id to fn once, at its first index, and
// reads it once, however often refs repeat it.
func TestReadChunksRepeatedRefs(t *testing.T) {
	fst, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := saveOf(t, fst, randomChunks(50))
	entries, err := Entries(context.Background(), fst, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refs []Ref
	for range 3 {
		for _, e := range entries {
			refs = append(refs, Ref{ID: e.ID, Loc: e.Loc})
		}
	}
	st := counting.New(fst)
	var mu sync.Mutex
	calls := map[int]int{}
	err = ReadChunks(context.Background(), st, refs, 4, func(i int, raw []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls[i]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != len(entries) {
		t.Errorf("fn called at %d indices, want %d (each distinct chunk once)", len(calls), len(entries))
	}
	for i, n := range calls {
		if i >= len(entries) || n != 1 {
			t.Errorf("fn called %d times at index %d; want once, at a first occurrence", n, i)
		}
	}
	if got := st.Snapshot().BytesGot; got > m.Packs[m.Tree.RootLoc.Pack] {
		t.Errorf("read %d bytes of a %d-byte pack", got, m.Packs[m.Tree.RootLoc.Pack])
	}
}
