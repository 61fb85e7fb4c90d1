package manifest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
)

// nodeStore is a Placer keeping nodes in memory, as one pack.
type nodeStore struct {
	pack   PackID
	nodes  map[chunker.ID][]byte
	placed []chunker.ID // ids placed, in order
	off    int64
}

func newNodeStore() *nodeStore {
	return &nodeStore{pack: PackID{1, 2, 3}, nodes: map[chunker.ID][]byte{}}
}

func (s *nodeStore) place(id chunker.ID, raw []byte) (Loc, error) {
	s.nodes[id] = raw
	s.placed = append(s.placed, id)
	s.off += int64(len(raw))
	return Loc{Pack: s.pack, Offset: s.off - int64(len(raw)), Length: int64(len(raw))}, nil
}

// walk returns the leaves under ref, checking every node's counts.
func (s *nodeStore) walk(t *testing.T, ref TreeRef) []Entry {
	t.Helper()
	var leaves []Entry
	var visit func(id chunker.ID, level int) (size, chunks int64)
	visit = func(id chunker.ID, level int) (size, chunks int64) {
		n, err := DecodeTreeNode(s.nodes[id])
		if err != nil {
			t.Fatalf("node %s: %v", id, err)
		}
		if n.Level != level {
			t.Fatalf("node %s: level %d, want %d", id, n.Level, level)
		}
		for _, e := range n.Entries {
			if level == 0 {
				leaves = append(leaves, e.Entry)
				size, chunks = size+e.Size, chunks+1
				continue
			}
			sz, ch := visit(e.ID, level-1)
			if sz != e.Size || ch != e.Chunks {
				t.Fatalf("child %s: size %d chunks %d, parent says %d %d", e.ID, sz, ch, e.Size, e.Chunks)
			}
			size, chunks = size+sz, chunks+ch
		}
		return size, chunks
	}
	if _, chunks := visit(ref.Root, ref.Levels-1); chunks != ref.Chunks {
		t.Fatalf("tree has %d chunks, ref says %d", chunks, ref.Chunks)
	}
	return leaves
}

// leafEntries returns n leaf entries in some packs, every third keyed.
func leafEntries(n int, seed byte) []Entry {
	out := make([]Entry, n)
	packs := []PackID{{9, 1}, {9, 2}, {9, 3}}
	for i := range out {
		id := chunker.Sum([]byte(fmt.Sprintf("chunk %d %d", seed, i)))
		out[i] = Entry{ID: id, Size: int64(1000 + i%5000),
			Loc: Loc{Pack: packs[i%3], Offset: int64(i) * 100, Length: 90}}
		if i%3 == 0 {
			out[i].Key, out[i].Start = fmt.Sprintf("node%08d", i), int64(i%7)
		}
	}
	return out
}

func TestBuildTreeRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 31, 32, 33, 1000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			entries := leafEntries(n, 0)
			s := newNodeStore()
			ref, err := BuildTree(entries, s.place)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.walk(t, ref); !slices.Equal(got, entries) {
				t.Fatalf("leaves differ from the entries built (%d vs %d)", len(got), len(entries))
			}
			if ref.Nodes != len(s.placed) {
				t.Errorf("ref.Nodes %d, placed %d", ref.Nodes, len(s.placed))
			}
		})
	}
}

func TestBuildTreeChangeIsLocal(t *testing.T) {
	entries := leafEntries(20000, 0)
	s := newNodeStore()
	locs := map[chunker.ID]Loc{}
	before, err := BuildTree(entries, func(id chunker.ID, raw []byte) (Loc, error) {
		l, err := s.place(id, raw)
		locs[id] = l
		return l, err
	})
	if err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(entries)
	changed[12345].ID = chunker.Sum([]byte("changed"))
	changed[12345].Loc.Offset = 7
	// Like a saver, the second build stores only the nodes it lacks.
	var fresh, bytesNew int
	after, err := BuildTree(changed, func(id chunker.ID, raw []byte) (Loc, error) {
		if l, ok := locs[id]; ok {
			return l, nil
		}
		fresh++
		bytesNew += len(raw)
		return s.place(id, raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	// One changed chunk rewrites the nodes on its path, and where it moves a
	// boundary, a neighbour on each level.
	if fresh > 2*after.Levels {
		t.Errorf("one changed chunk made %d new nodes (%d bytes) in a %d-level tree (was %d levels)",
			fresh, bytesNew, after.Levels, before.Levels)
	}
	if got := s.walk(t, after); !slices.Equal(got, changed) {
		t.Fatal("leaves differ")
	}
	t.Logf("%d levels, %d nodes; one changed chunk: %d new nodes, %d bytes", after.Levels, after.Nodes, fresh, bytesNew)
}

func TestSearchKey(t *testing.T) {
	n := &TreeNode{Entries: []TreeEntry{{Entry: Entry{Key: "b"}}, {}, {Entry: Entry{Key: "d"}}, {}}}
	for key, want := range map[string]int{"a": -1, "b": 0, "c": 0, "d": 2, "z": 2} {
		if got := n.SearchKey(key); got != want {
			t.Errorf("SearchKey(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestContentSHA256(t *testing.T) {
	a := leafEntries(10, 0)
	b := slices.Clone(a)
	b[3].Loc = Loc{Pack: PackID{7}, Length: 5}
	if ContentSHA256(a) != ContentSHA256(b) {
		t.Error("content hash depends on where chunks are stored")
	}
	b[3].Size++
	if ContentSHA256(a) == ContentSHA256(b) {
		t.Error("content hash ignores a chunk's size")
	}
	// The definition stored saves were compared with: SHA-256 over each
	// id and its size as 8 big-endian bytes, in order, whatever the
	// number of entries (here across the batches it hashes in).
	for _, n := range []int{0, 1, 255, 256, 257, 1000} {
		es := leafEntries(n, 0)
		var stream []byte
		for _, e := range es {
			stream = append(stream, e.ID[:]...)
			stream = binary.BigEndian.AppendUint64(stream, uint64(e.Size))
		}
		if got, want := ContentSHA256(es), chunker.Sum(stream).String(); got != want {
			t.Errorf("%d entries: content hash %s, want %s", n, got, want)
		}
	}
}

// goodNode returns a valid leaf node's bytes.
func goodNode() []byte {
	return EncodeTreeNode(&TreeNode{Entries: []TreeEntry{
		{Entry: Entry{ID: chunker.Sum([]byte("a")), Size: 10, Loc: Loc{Pack: PackID{1}, Offset: 0, Length: 20}, Key: "k1", Start: 2}},
		{Entry: Entry{ID: chunker.Sum([]byte("b")), Size: 20, Loc: Loc{Pack: PackID{2}, Offset: 30, Length: 20}}},
	}})
}

func TestDecodeTreeNodeBad(t *testing.T) {
	good := goodNode()
	if _, err := DecodeTreeNode(good); err != nil {
		t.Fatal(err)
	}
	set := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	// Offsets in good: magic 0-3, version 4, level 5, npacks 6, pack 1 id
	// 7-22, pack 2 id 23-38, count 39, entry 1 at 40.
	e1 := 40
	for name, data := range map[string][]byte{
		"empty":           nil,
		"truncated":       good[:len(good)-1],
		"header only":     good[:6],
		"bad magic":       set(0, 'X'),
		"version":         set(4, 2),
		"level":           set(5, MaxTreeLevels),
		"no packs":        set(6, 0),
		"zero pack":       append(append(bytes.Clone(good[:7]), make([]byte, 16)...), good[23:]...),
		"repeated pack":   append(append(bytes.Clone(good[:23]), good[7:23]...), good[39:]...),
		"no entries":      set(39, 0),
		"count too big":   set(39, 3),
		"zero size":       set(e1+32, 0),
		"pack index":      set(e1+33, 5),
		"zero length":     set(e1+35, 0),
		"start past end":  set(e1+39, 10),
		"trailing":        append(bytes.Clone(good), 0),
		"overlong varint": append(append(bytes.Clone(good[:39]), 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), good[40:]...),
	} {
		t.Run(name, func(t *testing.T) {
			if n, err := DecodeTreeNode(data); !errors.Is(err, ErrBadList) {
				t.Fatalf("DecodeTreeNode = %+v, %v; want ErrBadList", n, err)
			}
		})
	}
	t.Run("keys not increasing", func(t *testing.T) {
		n, _ := DecodeTreeNode(good)
		n.Entries[1].Key = "k0"
		if _, err := DecodeTreeNode(EncodeTreeNode(n)); !errors.Is(err, ErrBadList) {
			t.Fatalf("decreasing keys: %v", err)
		}
	})
	t.Run("bad utf8 key", func(t *testing.T) {
		b := bytes.Clone(good)
		i := bytes.Index(b, []byte("k1"))
		b[i] = 0xff
		if _, err := DecodeTreeNode(b); !errors.Is(err, ErrBadList) {
			t.Fatalf("err = %v", err)
		}
	})
}

func FuzzDecodeTreeNode(f *testing.F) {
	f.Add(goodNode())
	s := newNodeStore()
	if _, err := BuildTree(leafEntries(100, 1), s.place); err != nil {
		f.Fatal(err)
	}
	for _, raw := range s.nodes {
		f.Add(raw)
	}
	f.Add([]byte("PTRE\x01\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := DecodeTreeNode(data)
		if err != nil {
			if !errors.Is(err, ErrBadList) {
				t.Fatalf("error %v does not wrap ErrBadList", err)
			}
			return
		}
		again, err := DecodeTreeNode(EncodeTreeNode(n))
		if err != nil || !reflect.DeepEqual(again, n) {
			t.Fatalf("re-encoding a decoded node changed it: %v", err)
		}
	})
}

// sampleV2 returns a valid format 2 manifest with every field set.
func sampleV2() *Manifest {
	m := sample()
	m.FormatVersion = FormatVersion
	m.GraphSHA256, m.ChunkList = "", ChunkList{}
	m.ContentSHA256 = chunker.Sum([]byte("content")).String()
	m.PacksUploaded = 1
	m.Tree = &TreeRef{Format: TreeFormat, Root: chunker.Sum([]byte("root")), Levels: 2, Chunks: 70, Nodes: 3,
		RootLoc: Loc{Pack: PackID{0xab, 0xcd}, Offset: 4000, Length: 300}}
	m.Packs = map[PackID]int64{{0xab, 0xcd}: 5000, {0x12}: 1 << 24}
	return m
}

func TestGoldenV2(t *testing.T) {
	got, err := Encode(sampleV2())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "manifest-v2.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./manifest -run TestGoldenV2 -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from %s (run with -update if on purpose):\n%s", path, got)
	}
	m, err := Decode(want)
	if err != nil {
		t.Fatalf("Decode(golden): %v", err)
	}
	if !reflect.DeepEqual(m, sampleV2()) {
		t.Fatalf("Decode(golden) = %+v, want %+v", m, sampleV2())
	}
}

// A format 2 manifest stored indented (as written before 2026-11-29)
// decodes to the same manifest.
func TestDecodeIndentedV2(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "manifest-v2-indented.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil || !reflect.DeepEqual(m, sampleV2()) {
		t.Fatalf("Decode(indented) = %+v, %v; want %+v", m, err, sampleV2())
	}
	compact, err := Encode(sampleV2())
	if err != nil {
		t.Fatal(err)
	}
	if len(compact) >= len(b) {
		t.Errorf("compact manifest %d bytes, indented %d", len(compact), len(b))
	}
}

func TestDecodeBadV2(t *testing.T) {
	enc, err := Encode(sampleV2())
	if err != nil {
		t.Fatal(err)
	}
	// Edited in the indented form manifests had before 2026-11-29, which
	// Decode reads as well.
	var indented bytes.Buffer
	if err := json.Indent(&indented, enc, "", "  "); err != nil {
		t.Fatal(err)
	}
	good := indented.Bytes()
	edit := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in the v2 sample", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	root := sampleV2().Tree.Root.String()
	for _, tc := range []struct {
		name, msg string
		data      []byte
	}{
		{"no tree", "no tree", edit(`"tree"`, `"x"`)},
		{"no content", "no content_sha256", edit(`"content_sha256"`, `"x"`)},
		{"bad content", "content_sha256", edit(`"content_sha256": "`, `"content_sha256": "Z`)},
		{"tree format", "tree.format", edit(`"pitr-tree-1"`, `"pitr-tree-0"`)},
		{"levels", "tree.levels", edit(`"levels": 2`, `"levels": 0`)},
		{"chunks", "tree.chunks", edit(`"chunks": 70`, `"chunks": 0`)},
		{"nodes", "tree.nodes", edit(`"nodes": 3`, `"nodes": 1`)},
		{"root loc outside", "root_loc", edit(`"offset": 4000`, `"offset": 4800`)},
		{"root pack unknown", "root_loc", edit(`"abcd0000000000000000000000000000": 5000`, `"abce0000000000000000000000000000": 5000`)},
		{"pack size", "packs", edit(`: 16777216`, `: 0`)},
		{"pack id", "", edit(`"12000000000000000000000000000000"`, `"1200"`)},
		{"root pack", "", edit(`"pack": "abcd`, `"pack": "xyz`)},
		{"zero root", "", edit(root, strings.Repeat("0", 64))},
		{"negative packs", "packs_uploaded", edit(`"packs_uploaded": 1`, `"packs_uploaded": -1`)},
		{"with list", "no chunk_list", edit(`"tree"`, `"chunk_list": {"format": "pitr-list-1", "entries": 0, "chunks": []}, "tree"`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.data)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode = %v, %v; want ErrInvalid", m, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func BenchmarkBuildTree(b *testing.B) {
	entries := leafEntries(25000, 0)
	for b.Loop() {
		if _, err := BuildTree(entries, func(id chunker.ID, raw []byte) (Loc, error) { return Loc{Pack: PackID{1}, Length: 1}, nil }); err != nil {
			b.Fatal(err)
		}
	}
}
