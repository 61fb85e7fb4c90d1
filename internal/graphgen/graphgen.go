// Package graphgen generates deterministic, Blender-like session graphs and
// realistic edits of them, for benchmarks and tests of chunking, saving and
// restoring. It is test infrastructure: nothing in a running pitr uses it.
//
// Generate(seed, 2000) builds a graph of about 18 MB:
//
//   - 95.5 % "object" nodes of 1–10 KB (log-uniform): a text header, a
//     4×4 float32 transform, a text property block, a float32 animation
//     curve and some random bytes;
//   - 4 % "material" nodes of 30–100 KB: a text node tree, float32
//     parameter arrays and a noisy texture-like byte array;
//   - 0.5 % "mesh" nodes of 0.1–2 MB: float32 vertex positions of a smooth
//     surface, uint32 quad indices, normals and UVs, plus a little noise.
//
// The data is partly compressible (lz4 keeps roughly half to two thirds of
// it), like real scene data. Node ids look like Blender datablock names
// ("OBCube.0042", "MAMetal.1931", "MESuzanne.0007") and are unique; deps
// point from objects to meshes and materials, and from meshes and
// materials to materials.
//
// Mutate models one round of user edits: it picks a fraction of the nodes
// uniformly and changes each one's data in place, keeping its size. Nodes of
// at most SmallNode bytes get most of their data rewritten (a tail of 75–100 %
// of the node regenerated, as when an object's transform, properties and
// curves change); larger nodes (materials, meshes) get one contiguous region
// of 64 bytes to 8 KiB overwritten, as when a user moves a few vertices or
// tweaks a texture patch. It reports the number of data bytes that actually
// differ, the denominator of "bytes uploaded per byte changed".
//
// Everything is a pure function of the seed (math/rand/v2 PCG), so the same
// call gives the same graph on every machine and Go version that keeps PCG's
// output stable.
package graphgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Node is one generated graph node. Its fields mirror a pitr session node.
type Node struct {
	ID    string
	Type  string
	Owner string
	Deps  []string
	Data  []byte
}

// Node types Generate produces.
const (
	TypeObject   = "object"
	TypeMaterial = "material"
	TypeMesh     = "mesh"
)

// SmallNode is the size up to which Mutate rewrites most of a node's data;
// above it Mutate overwrites one region of at most MaxRegion bytes.
const (
	SmallNode = 16 << 10
	MaxRegion = 8 << 10
)

var words = []string{
	"Cube", "Sphere", "Suzanne", "Cylinder", "Plane", "Torus", "Cone", "Lamp",
	"Camera", "Armature", "Rock", "Tree", "Chair", "Table", "Wall", "Floor",
	"Window", "Door", "Metal", "Wood", "Glass", "Skin", "Cloth", "Water",
}

// Generate returns n nodes built from seed, sorted by id. See the package
// documentation for the mix of node types and sizes.
func Generate(seed uint64, n int) []Node {
	if n <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, 0x70697472)) // "pitr"
	meshes, materials := n/200, n/25
	if n >= 3 && meshes == 0 {
		meshes = 1
	}
	if n >= 3 && materials == 0 {
		materials = 1
	}
	kinds := make([]string, n)
	for i := range kinds {
		switch {
		case i < meshes:
			kinds[i] = TypeMesh
		case i < meshes+materials:
			kinds[i] = TypeMaterial
		default:
			kinds[i] = TypeObject
		}
	}
	rng.Shuffle(n, func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })

	nodes := make([]Node, n)
	var meshIDs, matIDs []string
	for i, kind := range kinds {
		id := fmt.Sprintf("%s%s.%04d", prefix(kind), words[rng.IntN(len(words))], i)
		nodes[i] = Node{ID: id, Type: kind, Owner: "COMMON"}
		switch kind {
		case TypeMesh:
			meshIDs = append(meshIDs, id)
		case TypeMaterial:
			matIDs = append(matIDs, id)
		}
	}
	meshNo := 0
	for i := range nodes {
		nd := &nodes[i]
		if rng.IntN(10) == 0 {
			nd.Owner = []string{"alice", "bob", "carol"}[rng.IntN(3)]
		}
		nd.Deps = pickDeps(rng, nd.ID, nd.Type, meshIDs, matIDs)
		switch nd.Type {
		case TypeMesh:
			// Stratified sizes: the few meshes dominate the total, so
			// spreading them over the range keeps the total steady.
			u := (float64(meshNo) + rng.Float64()) / float64(meshes)
			meshNo++
			nd.Data = genMesh(rng, nd.ID, logUniform(u, 100_000, 2_000_000))
		case TypeMaterial:
			nd.Data = genMaterial(rng, nd.ID, logUniform(rng.Float64(), 30_000, 100_000))
		default:
			nd.Data = genObject(rng, nd.ID, logUniform(rng.Float64(), 1_000, 10_000))
		}
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes
}

func prefix(kind string) string {
	switch kind {
	case TypeMesh:
		return "ME"
	case TypeMaterial:
		return "MA"
	}
	return "OB"
}

func pickDeps(rng *rand.Rand, self, kind string, meshIDs, matIDs []string) []string {
	var deps []string
	add := func(ids []string) {
		if len(ids) == 0 {
			return
		}
		id := ids[rng.IntN(len(ids))]
		if id != self && !slices.Contains(deps, id) {
			deps = append(deps, id)
		}
	}
	switch kind {
	case TypeObject:
		add(meshIDs)
		for range rng.IntN(3) {
			add(matIDs)
		}
	default:
		for range rng.IntN(2) {
			add(matIDs)
		}
	}
	slices.Sort(deps)
	return deps
}

// logUniform maps u in [0, 1) to a size in [lo, hi] whose logarithm is
// uniform.
func logUniform(u float64, lo, hi int) int {
	l, h := math.Log(float64(lo)), math.Log(float64(hi))
	return int(math.Exp(l + u*(h-l)))
}

// buf is an append-only byte builder with little-endian helpers.
type buf []byte

func (b *buf) f32(v float64) { *b = binary.LittleEndian.AppendUint32(*b, math.Float32bits(float32(v))) }
func (b *buf) u32(v uint32)  { *b = binary.LittleEndian.AppendUint32(*b, v) }
func (b *buf) str(format string, args ...any) {
	*b = fmt.Appendf(*b, format, args...)
}

// random appends n random bytes.
func (b *buf) random(rng *rand.Rand, n int) {
	for range n {
		*b = append(*b, byte(rng.Uint32()))
	}
}

// fit pads or cuts b to exactly size bytes, padding with random bytes.
func (b buf) fit(rng *rand.Rand, size int) []byte {
	if len(b) < size {
		b.random(rng, size-len(b))
	}
	return b[:size:size]
}

func genObject(rng *rand.Rand, id string, size int) []byte {
	b := make(buf, 0, size+256)
	b.str("name=%s\ntype=object\nvisible=%t\nlayer=%d\n", id, rng.IntN(4) != 0, rng.IntN(20))
	objectBody(rng, &b, size)
	return b.fit(rng, size)
}

// objectBody appends the editable part of an object: transform, properties,
// an animation curve and random bytes, until b holds about size bytes.
func objectBody(rng *rand.Rand, b *buf, size int) {
	for i := range 16 {
		switch {
		case i%5 == 0:
			b.f32(0.5 + rng.Float64()*2) // scale on the diagonal
		case i >= 12 && i < 15:
			b.f32(math.Round(rng.NormFloat64()*1000) / 100) // location
		default:
			b.f32(0)
		}
	}
	for i := 0; len(*b) < size*3/10; i++ {
		b.str("prop.%s_%d=%.3f\n", words[rng.IntN(len(words))], i, rng.Float64()*100)
	}
	phase, amp := rng.Float64()*math.Pi, 1+rng.Float64()*5
	for i := 0; len(*b) < size*3/4; i++ {
		b.f32(float64(i)) // frame
		b.f32(amp * math.Sin(phase+float64(i)/12))
	}
	b.random(rng, size-len(*b))
}

func genMaterial(rng *rand.Rand, id string, size int) []byte {
	b := make(buf, 0, size+256)
	b.str("material %s\n", id)
	for i := 0; len(b) < size/4; i++ {
		b.str("node %d type=%s in=%d out=%d value=%.4f\n", i,
			[]string{"BSDF", "Mix", "Texture", "Bump", "Ramp"}[rng.IntN(5)],
			rng.IntN(8), rng.IntN(8), rng.Float64())
	}
	for len(b) < size/2 {
		b.f32(math.Round(rng.Float64()*64) / 64) // quantized parameters
	}
	base := rng.IntN(256)
	for len(b) < size {
		b = append(b, byte(base+rng.IntN(24))) // noisy texture patch
	}
	return b.fit(rng, size)
}

func genMesh(rng *rand.Rand, id string, size int) []byte {
	b := make(buf, 0, size+256)
	b.str("mesh %s\n", id)
	// One record per vertex: position (3 float32), normal (3), uv (2),
	// then the quad indices. Roughly 44 bytes per vertex in total.
	verts := size / 44
	w := max(2, int(math.Sqrt(float64(verts))))
	fx, fy, h := 1+rng.Float64()*4, 1+rng.Float64()*4, rng.Float64()*2
	for i := 0; i < verts && len(b) < size; i++ {
		x, y := float64(i%w)/float64(w), float64(i/w)/float64(w)
		z := h * math.Sin(fx*x*math.Pi) * math.Cos(fy*y*math.Pi)
		b.f32(x)
		b.f32(y)
		b.f32(math.Round(z*4096) / 4096)
		b.f32(0)
		b.f32(0)
		b.f32(1)
		b.f32(x)
		b.f32(y)
	}
	for i := 0; len(b)+16 <= size*95/100; i++ {
		v := uint32(i%(w-1) + (i/(w-1))*w)
		b.u32(v)
		b.u32(v + 1)
		b.u32(v + uint32(w) + 1)
		b.u32(v + uint32(w))
	}
	return b.fit(rng, size)
}
