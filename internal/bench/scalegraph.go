package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/internal/graphgen"
)

// The graphs of the scale benchmark (--scale). A size is either a node
// count, graphgen.Generate(seed, n) held in memory like the other modes', or
// "<x>g": a graph of about x GB (10⁹ bytes) of node data made of large
// meshes, which pitr-bench never holds: bigSmallNodes nodes of
// graphgen.Generate plus as many meshes of bigMeshMin–bigMeshMax bytes
// (log-uniform, stratified) as make up the rest, each mesh's data a pure
// function of (seed, its number), generated when it is PUT.
const (
	bigSmallNodes = 2000
	bigMeshMin    = 100_000
	bigMeshMax    = 5_000_000
	bigSizeSalt   = 0x7363616c65 // "scale": the meshes' sizes
	bigDataSalt   = 0x6d65736864 // "meshd": a mesh's data
)

// scaleSize is one entry of --scale-sizes.
type scaleSize struct {
	spec  string  // as given: "2000", "1g"
	nodes int     // a graphgen graph of this many nodes, or
	gb    float64 // a large-mesh graph of about this many GB
}

// parseScaleSizes reads a comma-separated list of node counts and "<x>g"
// sizes.
func parseScaleSizes(s string) ([]scaleSize, error) {
	var out []scaleSize
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if num, ok := strings.CutSuffix(f, "g"); ok {
			gb, err := strconv.ParseFloat(num, 64)
			if err != nil || gb <= 0 || gb > 64 || math.IsNaN(gb) {
				return nil, fmt.Errorf("%q: want a size like 1g or 0.5g (GB, at most 64)", f)
			}
			out = append(out, scaleSize{spec: f, gb: gb})
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 10 {
			return nil, fmt.Errorf("%q: want a node count of at least 10, or a size like 1g", f)
		}
		out = append(out, scaleSize{spec: f, nodes: n})
	}
	return out, nil
}

// label names a size in the report.
func (s scaleSize) label() string {
	if s.gb > 0 {
		return fmt.Sprintf("~%s GB, large meshes", strconv.FormatFloat(s.gb, 'f', -1, 64))
	}
	return num(int64(s.nodes)) + " nodes"
}

// scaleGraph is the graph of one size: small nodes held, meshes generated
// on demand. Node i is small[i], or mesh i−len(small).
type scaleGraph struct {
	seed   uint64
	small  []graphgen.Node
	meshes []int // sizes of the generated meshes
}

func newScaleGraph(seed uint64, s scaleSize) *scaleGraph {
	if s.gb == 0 {
		return &scaleGraph{seed: seed, small: graphgen.Generate(seed, s.nodes)}
	}
	g := &scaleGraph{seed: seed, small: graphgen.Generate(seed, bigSmallNodes)}
	g.meshes = bigMeshSizes(seed, int64(s.gb*1e9)-dataBytes(g.small))
	return g
}

// bigMeshSizes returns the sizes of meshes that add up to about total
// bytes: log-uniform in bigMeshMin–bigMeshMax, stratified (mesh i's size
// is drawn from the i-th of n equal slices of the distribution) and then
// shuffled, so the total is steady and big and small meshes alternate.
func bigMeshSizes(seed uint64, total int64) []int {
	mean := float64(bigMeshMax-bigMeshMin) / math.Log(float64(bigMeshMax)/float64(bigMeshMin))
	n := max(1, int(math.Round(float64(total)/mean)))
	rng := rand.New(rand.NewPCG(seed, bigSizeSalt))
	sizes := make([]int, n)
	lo, hi := math.Log(bigMeshMin), math.Log(bigMeshMax)
	for i := range sizes {
		u := (float64(i) + rng.Float64()) / float64(n)
		sizes[i] = int(math.Exp(lo + u*(hi-lo)))
	}
	rng.Shuffle(n, func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	return sizes
}

func (g *scaleGraph) count() int { return len(g.small) + len(g.meshes) }

// dataBytes is the graph's node data in bytes.
func (g *scaleGraph) dataBytes() int64 {
	n := dataBytes(g.small)
	for _, s := range g.meshes {
		n += int64(s)
	}
	return n
}

// node returns node i, generating a mesh's data.
func (g *scaleGraph) node(i int) graphgen.Node {
	if i < len(g.small) {
		return g.small[i]
	}
	i -= len(g.small)
	id := fmt.Sprintf("MEBig.%05d", i)
	return graphgen.Node{ID: id, Type: graphgen.TypeMesh, Owner: "COMMON", Data: bigMeshData(g.seed, i, g.meshes[i], id)}
}

// bigMeshData returns mesh i's data: a header, then blocks of 256 bytes
// whose first half is random and whose second half repeats 128 bytes from
// up to 4 KiB before, so that lz4 keeps about half of it, as it does of
// graphgen's data. Generating it costs about as much as copying it.
func bigMeshData(seed uint64, i, size int, id string) []byte {
	rng := rand.New(rand.NewPCG(seed^bigDataSalt, uint64(i)))
	b := make([]byte, size)
	off := copy(b, "mesh "+id+"\n")
	for off < size {
		end := min(off+128, size)
		for ; off+8 <= end; off += 8 {
			binary.LittleEndian.PutUint64(b[off:], rng.Uint64())
		}
		for ; off < end; off++ {
			b[off] = byte(rng.Uint32())
		}
		if off >= size {
			break
		}
		end = min(off+128, size)
		if back := min(off, 4096); back >= 256 {
			src := off - 128 - rng.IntN(back-255)
			off += copy(b[off:end], b[src:src+(end-off)])
			continue
		}
		for ; off < end; off++ {
			b[off] = byte(rng.Uint32())
		}
	}
	return b
}

// putAll PUTs every node of g, workers at a time, generating each when it
// is sent: at most workers nodes are in memory at once besides g.small.
func (g *scaleGraph) putAll(ctx context.Context, api *apiClient, workers int) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(workers)
	for i := range g.count() {
		eg.Go(func() error {
			return api.put(ctx, g.node(i))
		})
	}
	return eg.Wait()
}

// change makes new versions of the nodes of g at indexes, each changed by
// graphgen.Mutate as one of a 1 % change would be, and PUTs them. Changed
// small nodes replace their old versions in g; a changed mesh is not
// kept (no later step reads it back). It returns the data bytes of the
// nodes changed and of the bytes that differ.
func (g *scaleGraph) change(ctx context.Context, api *apiClient, seed uint64, indexes []int) (nodeBytes, changedBytes int64, spans []byte, err error) {
	rng := rand.New(rand.NewPCG(seed, bigDataSalt))
	var changed []graphgen.Node
	for _, i := range indexes {
		old := g.node(i)
		ch, diff := graphgen.Mutate([]graphgen.Node{old}, rng.Uint64(), 1)
		spans = append(spans, changedSpan(old.Data, ch[0].Data)...)
		if i < len(g.small) {
			g.small[i] = ch[0]
		}
		nodeBytes += int64(len(ch[0].Data))
		changedBytes += int64(diff)
		changed = append(changed, ch[0])
	}
	return nodeBytes, changedBytes, spans, api.putNodes(ctx, changed, 4)
}

// onePercent picks round(1 % of the nodes) (at least one) uniformly.
func (g *scaleGraph) onePercent(seed uint64) []int {
	k := max(1, int(math.Round(0.01*float64(g.count()))))
	return rand.New(rand.NewPCG(seed, 0x6f6e6570)).Perm(g.count())[:k] // "onep"
}

// smallObjects picks n distinct "object" nodes (1–10 KB) of g.small.
func (g *scaleGraph) smallObjects(seed uint64, n int) []int {
	var objs []int
	for i, nd := range g.small {
		if nd.Type == graphgen.TypeObject {
			objs = append(objs, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x6f6e656e)) // "onen"
	rng.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
	return objs[:min(n, len(objs))]
}
