package session

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleGraph() *Graph {
	return &Graph{Initialized: true, Nodes: []*Node{
		{ID: "Cube", Type: "object", Owner: Common, Deps: []string{"Material.001", "mesh-1"}, Data: []byte{1, 2, 3, 0, 255}, Version: 3},
		{ID: "Material.001", Type: "material", Owner: "ann", Deps: []string{}, Data: []byte("roughness=0.5"), Version: 1},
		{ID: "mesh-1", Type: "mesh", Owner: Common, Deps: []string{}, Data: []byte{}, Version: 12},
	}}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, g := range []*Graph{sampleGraph(), {Nodes: []*Node{}}} {
		enc := Encode(g)
		got, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if got.Initialized != g.Initialized || !reflect.DeepEqual(got.Nodes, g.Nodes) {
			t.Fatalf("round trip: got %+v want %+v", got, g)
		}
		if !bytes.Equal(Encode(got), enc) {
			t.Fatal("re-encoding differs")
		}
	}
}

func TestEncodeRecordsConcatenate(t *testing.T) {
	enc, recs := EncodeRecords(sampleGraph())
	if len(recs) != len(sampleGraph().Nodes)+2 {
		t.Fatalf("%d records", len(recs))
	}
	if !bytes.Equal(bytes.Join(recs, nil), enc) {
		t.Fatal("records do not concatenate to the encoding")
	}
	for i, n := range sampleGraph().Nodes {
		if !bytes.Equal(recs[i+1], EncodeNode(n)) {
			t.Fatalf("record %d differs from EncodeNode", i+1)
		}
	}
	// appending to a record must not overwrite the next one
	_ = append(recs[1], 0xff)
	if !bytes.Equal(bytes.Join(recs, nil), enc) {
		t.Fatal("records share capacity with their neighbours")
	}
}

func TestEncodeGolden(t *testing.T) {
	path := filepath.Join("testdata", "graph-v1.bin")
	enc := Encode(sampleGraph())
	if *update {
		if err := os.WriteFile(path, enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./session -update to create it)", err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatalf("encoding of the sample graph changed; if the format changed on purpose bump FormatVersion and run -update")
	}
}

// An unchanged node encodes to the same bytes whatever else changes, and a
// session built from the same edits encodes identically whatever map order.
func TestEncodeStableUnderOtherChanges(t *testing.T) {
	build := func(extra bool) *Session {
		s := New()
		for _, id := range []string{"z", "b", "m", "a"} {
			if _, err := s.Put(admin, id, NodeInput{Type: "t", Data: []byte(id + "-data")}); err != nil {
				t.Fatal(err)
			}
		}
		if extra {
			if _, err := s.Put(admin, "b", NodeInput{Type: "t", Data: []byte("changed")}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(admin, "c", NodeInput{Type: "t"}); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	_, r1 := EncodeRecords(build(false).Snapshot())
	_, r2 := EncodeRecords(build(false).Snapshot())
	if !reflect.DeepEqual(r1, r2) {
		t.Fatal("same edits encode differently")
	}
	_, r3 := EncodeRecords(build(true).Snapshot())
	// r1: H a b m z T ; r3: H a b c m z T
	if !bytes.Equal(r1[1], r3[1]) || !bytes.Equal(r1[3], r3[4]) || !bytes.Equal(r1[4], r3[5]) || !bytes.Equal(r1[0], r3[0]) {
		t.Fatal("unchanged nodes encode differently after other nodes changed")
	}
	if bytes.Equal(r1[2], r3[2]) {
		t.Fatal("changed node encodes the same")
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	good := Encode(sampleGraph())
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	_, recs := EncodeRecords(sampleGraph())
	hdr := recs[0]
	withNodes := func(nodes ...*Node) []byte {
		return Encode(&Graph{Nodes: nodes})
	}
	cases := map[string][]byte{
		"empty":              nil,
		"one byte":           {tagHeader},
		"truncated header":   good[:5],
		"truncated middle":   good[:len(good)/2],
		"missing trailer":    good[:len(good)-7],
		"truncated crc":      good[:len(good)-1],
		"flipped magic":      flip(3),
		"flipped data":       flip(len(good) / 2),
		"flipped crc":        flip(len(good) - 1),
		"trailing bytes":     append(bytes.Clone(good), 0),
		"header only":        hdr,
		"node first":         recs[1],
		"two headers":        append(bytes.Clone(hdr), good...),
		"unknown tag":        append(bytes.Clone(hdr), frame('X', []byte("x"))...),
		"bad version":        frame(tagHeader, append([]byte(graphMagic), 9, 0)),
		"bad flags":          append(frame(tagHeader, append([]byte(graphMagic), 1, 6)), frame(tagTrailer, []byte{0})...),
		"out of order":       withNodes(&Node{ID: "b", Type: "t", Owner: Common, Version: 1}, &Node{ID: "a", Type: "t", Owner: Common, Version: 1}),
		"duplicate id":       withNodes(&Node{ID: "a", Type: "t", Owner: Common, Version: 1}, &Node{ID: "a", Type: "t", Owner: Common, Version: 1}),
		"version zero":       withNodes(&Node{ID: "a", Type: "t", Owner: Common}),
		"invalid id":         withNodes(&Node{ID: "a/b", Type: "t", Owner: Common, Version: 1}),
		"invalid owner":      withNodes(&Node{ID: "a", Type: "t", Owner: "x y", Version: 1}),
		"empty type":         withNodes(&Node{ID: "a", Owner: Common, Version: 1}),
		"trailer count":      append(bytes.Clone(hdr), frame(tagTrailer, []byte{3})...),
		"node extra bytes":   append(bytes.Clone(hdr), frame(tagNode, append(EncodeNode(&Node{ID: "a", Type: "t", Owner: Common, Version: 1})[2:len(EncodeNode(&Node{ID: "a", Type: "t", Owner: Common, Version: 1}))-4], 0))...),
		"huge length prefix": append(bytes.Clone(hdr), tagNode, 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for name, in := range cases {
		g, err := Decode(in)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got graph %v err %v, want ErrCorrupt", name, g != nil, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sampleGraph()))
	f.Add(Encode(&Graph{}))
	f.Add([]byte("PITRGRAPH"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if !bytes.Equal(Encode(g), data) {
			t.Fatal("a decodable input does not re-encode to itself")
		}
	})
}

func TestEncodeHeaderTrailerAreRecords(t *testing.T) {
	for _, g := range []*Graph{sampleGraph(), {}, {Initialized: true}} {
		_, recs := EncodeRecords(g)
		if !bytes.Equal(EncodeHeader(g.Initialized), recs[0]) {
			t.Errorf("EncodeHeader(%t) differs from the first record", g.Initialized)
		}
		if !bytes.Equal(EncodeTrailer(len(g.Nodes)), recs[len(recs)-1]) {
			t.Errorf("EncodeTrailer(%d) differs from the last record", len(g.Nodes))
		}
		for i, n := range g.Nodes {
			if !bytes.Equal(EncodeNode(n), recs[i+1]) {
				t.Errorf("EncodeNode(%s) differs from its record", n.ID)
			}
		}
	}
}

// Check validates like Decode, without the data.
func TestCheck(t *testing.T) {
	g := sampleGraph()
	enc := Encode(g)
	c, err := Check(enc)
	if err != nil || len(c.Nodes) != len(g.Nodes) || c.Initialized != g.Initialized {
		t.Fatalf("Check = %+v, %v", c, err)
	}
	for i, n := range c.Nodes {
		if n.Data != nil || n.ID != g.Nodes[i].ID || n.Version != g.Nodes[i].Version {
			t.Errorf("node %d: %+v", i, n)
		}
	}
	bad := append([]byte{}, enc...)
	bad[len(bad)/2] ^= 1
	if _, err := Check(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Check of a damaged graph: %v", err)
	}
}

// DecodeShared decodes the same graph as Decode, its nodes' data slices of
// the input that cannot grow into it.
func TestDecodeShared(t *testing.T) {
	g := sampleGraph()
	enc := Encode(g)
	want, _ := Decode(enc)
	got, err := DecodeShared(enc)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeShared = %+v, %v; want %+v", got, err, want)
	}
	for _, n := range got.Nodes {
		if len(n.Data) > 0 && cap(n.Data) != len(n.Data) {
			t.Errorf("node %s: data of cap %d can grow into the input", n.ID, cap(n.Data))
		}
	}
}
