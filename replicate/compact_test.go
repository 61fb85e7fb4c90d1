package replicate

import (
	"fmt"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
)

// baseOf returns a base of packs holding n chunks of size bytes each,
// every pack sized as given, and the entries of a save that reuses them.
func baseOf(packs map[manifest.PackID]int64, chunks map[manifest.PackID]int, size int64) (based, []manifest.Entry) {
	b := based{idx: chunkIndex{locs: map[chunker.ID]manifest.Loc{}}, packs: packs}
	var entries []manifest.Entry
	for p, n := range chunks {
		for i := range n {
			id := chunker.Sum(fmt.Appendf(nil, "%s %d", p, i))
			b.idx.locs[id] = manifest.Loc{Pack: p, Offset: int64(i) * size, Length: size}
			entries = append(entries, manifest.Entry{ID: id, Size: size})
		}
	}
	return b, entries
}

func TestChooseRewrites(t *testing.T) {
	full, sparse := manifest.PackID{1}, manifest.PackID{2}
	const c = 10 << 10
	b, entries := baseOf(map[manifest.PackID]int64{full: 100 * c, sparse: 100 * c},
		map[manifest.PackID]int{full: 60, sparse: 40}, c)
	if got := chooseRewrites(liveOf(b, entries), b, DefaultPackSize); !got[sparse] || got[full] || len(got) != 1 {
		t.Errorf("a 40 %% live pack and a 60 %% one: rewrites %v, want only the sparse one", got)
	}
	for _, n := range []int{tierMax - 1, tierMax} {
		packs, chunks := map[manifest.PackID]int64{}, map[manifest.PackID]int{}
		for i := range n {
			p := manifest.PackID{3, byte(i)}
			packs[p], chunks[p] = 10*c, 10 // whole, small: tier 0
		}
		b, entries := baseOf(packs, chunks, c)
		got := chooseRewrites(liveOf(b, entries), b, DefaultPackSize)
		if want := n >= tierMax; (len(got) == n) != want || (len(got) != 0) != want {
			t.Errorf("%d small packs in one tier: rewrites %d of them, want all: %v", n, len(got), want)
		}
	}
}

// The packs of a large graph's full save are as large as packs get: they
// are never merged, however many there are.
func TestChooseRewritesLeavesFullPacks(t *testing.T) {
	packs, chunks := map[manifest.PackID]int64{}, map[manifest.PackID]int{}
	for i := range 2 * tierMax {
		p := manifest.PackID{4, byte(i)}
		packs[p], chunks[p] = DefaultPackSize, DefaultPackSize/(64<<10)
	}
	b, entries := baseOf(packs, chunks, 64<<10)
	if got := chooseRewrites(liveOf(b, entries), b, DefaultPackSize); len(got) != 0 {
		t.Errorf("%d full packs: rewrites %d of them", len(packs), len(got))
	}
}

// liveOf is what chooseRewrites is given for a save of entries on base b
// loaded from the store.
func liveOf(b based, entries []manifest.Entry) map[manifest.PackID]int64 {
	found := b.locate(entries, nil)
	return found.liveBytes(b)
}
