package manifest

import (
	"slices"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
)

// stablePlacer keeps a node where it first put it, as the saver does for
// the nodes its base save holds.
type stablePlacer struct {
	*nodeStore
	at map[chunker.ID]Loc
}

func (p stablePlacer) place(id chunker.ID, raw []byte) (Loc, error) {
	if l, ok := p.at[id]; ok {
		return l, nil
	}
	l, err := p.nodeStore.place(id, raw)
	p.at[id] = l
	return l, err
}

// The cache builds the tree BuildTree builds, and after a one-chunk change
// encodes only the nodes on that chunk's path (one per level, two where a
// leaf boundary moved) and forgets the nodes no longer in the tree.
func TestTreeCacheEncodesOnlyChangedNodes(t *testing.T) {
	p := stablePlacer{newNodeStore(), map[chunker.ID]Loc{}}
	var c TreeCache
	entries := leafEntries(20000, 0)
	for round := range 3 {
		if round > 0 {
			entries = slices.Clone(entries)
			i := 7000 * round
			entries[i].ID = chunker.Sum([]byte{byte(round)})
			entries[i].Size++
		}
		before := map[*cachedNode]bool{}
		for _, n := range c.nodes {
			before[n] = true
		}
		got, err := c.Build(entries, p.place)
		if err != nil {
			t.Fatal(err)
		}
		want, err := BuildTree(entries, p.place)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("round %d: cached build %+v, BuildTree %+v", round, got, want)
		}
		if !slices.Equal(p.walk(t, got), entries) {
			t.Fatalf("round %d: the tree's leaves are not the entries", round)
		}
		encoded := 0
		for _, n := range c.nodes {
			if !before[n] {
				encoded++
			}
		}
		if round > 0 && (encoded == 0 || encoded > 2*got.Levels) {
			t.Errorf("round %d: %d nodes encoded for a one-chunk change in a %d-level tree", round, encoded, got.Levels)
		}
		if len(c.nodes) != got.Nodes {
			t.Errorf("round %d: the cache holds %d nodes, the tree has %d", round, len(c.nodes), got.Nodes)
		}
	}
}

// BenchmarkTreeCacheOneChange builds the tree of 25,000 chunks after a
// one-chunk change, through the cache (compare BenchmarkBuildTree).
func BenchmarkTreeCacheOneChange(b *testing.B) {
	entries := leafEntries(25000, 0)
	place := func(id chunker.ID, raw []byte) (Loc, error) { return Loc{Pack: PackID{1}, Length: 1}, nil }
	var c TreeCache
	i := 0
	for b.Loop() {
		i++
		entries[(i*7919)%len(entries)].Size++
		if _, err := c.Build(entries, place); err != nil {
			b.Fatal(err)
		}
	}
}

// BuildSince reuses, without comparing, a leaf whose entries the hints say
// are those of a leaf of the last build; hints about another build are
// ignored. The first case gives a wrong tree on purpose (the hints lie):
// it shows that the hint, not a comparison, decided.
func TestTreeCacheBuildSinceTrustsHintsOfTheLastBuild(t *testing.T) {
	p := stablePlacer{newNodeStore(), map[chunker.ID]Loc{}}
	entries := leafEntries(3000, 0)
	same := make([]int32, len(entries))
	for i := range same {
		same[i] = int32(i)
	}
	changed := slices.Clone(entries)
	changed[1500].ID = chunker.Sum([]byte("changed"))
	want, err := BuildTree(changed, p.place)
	if err != nil {
		t.Fatal(err)
	}
	for _, stale := range []bool{false, true} {
		var c TreeCache
		if _, err := c.Build(entries, p.place); err != nil {
			t.Fatal(err)
		}
		since := c.Gen()
		if stale {
			since-- // not the last build: the hints must be ignored
		}
		got, err := c.BuildSince(changed, since, same, p.place)
		if err != nil {
			t.Fatal(err)
		}
		if (got == want) != stale {
			t.Errorf("hints of the last build %t: built %v, BuildTree %v", !stale, got.Root, want.Root)
		}
	}
	// True hints: the tree BuildTree builds.
	var c TreeCache
	if _, err := c.Build(entries, p.place); err != nil {
		t.Fatal(err)
	}
	same[1500] = -1
	if got, err := c.BuildSince(changed, c.Gen(), same, p.place); err != nil || got != want {
		t.Fatalf("true hints: %v %v, want %v", got.Root, err, want.Root)
	}
}
