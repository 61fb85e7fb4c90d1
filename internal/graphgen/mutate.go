package graphgen

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Mutate picks round(fraction × len(nodes)) nodes (at least one when
// fraction > 0) uniformly with a generator seeded by seed, and returns new
// versions of them, sorted by id, together with the number of data bytes
// that differ between the old and the new versions. nodes is not modified;
// the returned nodes share nothing with it. Sizes do not change.
//
// A node of at most SmallNode bytes has a tail of 75–100 % of its data
// regenerated like Generate builds it (text properties, floats, random
// bytes). A larger node has one contiguous region of 64 bytes to MaxRegion
// bytes overwritten: float32 values in it nudged by a few percent, and any
// bytes left over at the region's end replaced.
func Mutate(nodes []Node, seed uint64, fraction float64) (changed []Node, changedBytes int) {
	if len(nodes) == 0 || fraction <= 0 {
		return nil, 0
	}
	k := int(math.Round(fraction * float64(len(nodes))))
	k = min(max(k, 1), len(nodes))
	rng := rand.New(rand.NewPCG(seed, 0x6d757461)) // "muta"
	picked := rng.Perm(len(nodes))[:k]
	slices.Sort(picked)
	for _, i := range picked {
		old := nodes[i]
		nd := Node{
			ID:    old.ID,
			Type:  old.Type,
			Owner: old.Owner,
			Deps:  slices.Clone(old.Deps),
			Data:  slices.Clone(old.Data),
		}
		if len(nd.Data) <= SmallNode {
			rewrite(rng, nd.Data)
		} else {
			overwriteRegion(rng, nd.Data)
		}
		changedBytes += diffBytes(old.Data, nd.Data)
		changed = append(changed, nd)
	}
	slices.SortFunc(changed, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return changed, changedBytes
}

// rewrite regenerates a tail of 75–100 % of data in place.
func rewrite(rng *rand.Rand, data []byte) {
	if len(data) == 0 {
		return
	}
	start := rng.IntN(len(data)/4 + 1)
	tail := make(buf, 0, len(data)-start+256)
	objectBody(rng, &tail, len(data)-start)
	copy(data[start:], tail.fit(rng, len(data)-start))
}

// overwriteRegion changes one region of 64 bytes to MaxRegion bytes.
func overwriteRegion(rng *rand.Rand, data []byte) {
	n := min(64+rng.IntN(MaxRegion-64+1), len(data))
	off := rng.IntN(len(data) - n + 1)
	region := data[off : off+n]
	i := 0
	for ; i+4 <= len(region); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(region[i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) || v == 0 {
			v = float32(rng.Float64())
		} else {
			v *= float32(1 + (rng.Float64()-0.5)/10)
		}
		binary.LittleEndian.PutUint32(region[i:], math.Float32bits(v))
	}
	for ; i < len(region); i++ {
		region[i] = byte(rng.Uint32())
	}
}

// diffBytes counts the positions where a and b differ, plus their length
// difference.
func diffBytes(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// Apply returns a copy of nodes in which every node with the id of one in
// changed is replaced by it. Ids in changed that nodes lacks are ignored.
// The result keeps nodes' order; nodes is not modified.
func Apply(nodes, changed []Node) []Node {
	byID := make(map[string]Node, len(changed))
	for _, nd := range changed {
		byID[nd.ID] = nd
	}
	out := slices.Clone(nodes)
	for i := range out {
		if nd, ok := byID[out[i].ID]; ok {
			out[i] = nd
		}
	}
	return out
}
