package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
)

func TestParseScaleSizes(t *testing.T) {
	got, err := parseScaleSizes(defaultScaleSet)
	want := []scaleSize{{spec: "2000", nodes: 2000}, {spec: "20000", nodes: 20000}, {spec: "1g", gb: 1}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseScaleSizes(%q) = %v, %v", defaultScaleSet, got, err)
	}
	if got, err := parseScaleSizes(" 0.5G "); err != nil || len(got) != 1 || got[0].gb != 0.5 || got[0].spec != "0.5g" {
		t.Errorf("0.5G: %v, %v", got, err)
	}
	for _, bad := range []string{"", "5", "2000,", "g", "-1g", "0g", "100g", "x", "nang"} {
		if _, err := parseScaleSizes(bad); err == nil {
			t.Errorf("parseScaleSizes(%q): no error", bad)
		}
	}
	if l := (scaleSize{gb: 0.5}).label(); l != "~0.5 GB, large meshes" {
		t.Errorf("label %q", l)
	}
	if l := (scaleSize{nodes: 20000}).label(); l != "20,000 nodes" {
		t.Errorf("label %q", l)
	}
	o := options{seed: 1, scaleSizes: want}
	if c := scaleCommandLine(o); c != "go run ./cmd/pitr-bench --scale" {
		t.Errorf("default command line %q", c)
	}
	o.scaleSizes, o.journal, o.write = want[:1], 500, "B.md"
	if c, w := scaleCommandLine(o), "go run ./cmd/pitr-bench --scale --scale-sizes 2000 --journal 500 --write B.md"; c != w {
		t.Errorf("command line %q, want %q", c, w)
	}
}

func TestBigMeshes(t *testing.T) {
	sizes := bigMeshSizes(1, 1e9)
	var total int64
	for _, s := range sizes {
		if s < bigMeshMin || s > bigMeshMax {
			t.Errorf("mesh size %d out of range", s)
		}
		total += int64(s)
	}
	if total < 0.95e9 || total > 1.05e9 {
		t.Errorf("%d meshes, %d bytes in all, want about 1 GB", len(sizes), total)
	}
	a, b := bigMeshData(1, 7, 300_000, "MEBig.00007"), bigMeshData(1, 7, 300_000, "MEBig.00007")
	if len(a) != 300_000 || !bytes.Equal(a, b) {
		t.Fatal("mesh data is not a function of (seed, number, size)")
	}
	if c := bigMeshData(1, 8, 300_000, "MEBig.00008"); bytes.Equal(a[1000:2000], c[1000:2000]) {
		t.Error("two meshes share data")
	}
	var z bytes.Buffer
	w := lz4.NewWriter(&z)
	_, _ = w.Write(a)
	_ = w.Close()
	if r := float64(z.Len()) / float64(len(a)); r < 0.45 || r > 0.65 {
		t.Errorf("lz4 keeps %.2f of mesh data, want about half", r)
	}
	for _, n := range []int{1, 100, 129, 257, 1000} {
		if d := bigMeshData(1, 0, n, "MEBig.00000"); len(d) != n {
			t.Errorf("size %d: got %d bytes", n, len(d))
		}
	}
	g := &scaleGraph{seed: 1, meshes: []int{1000, 2000}}
	if g.count() != 2 || g.dataBytes() != 3000 || g.node(1).ID != "MEBig.00001" || len(g.node(1).Data) != 2000 {
		t.Errorf("scaleGraph: %d nodes, %d bytes, node 1 %q", g.count(), g.dataBytes(), g.node(1).ID)
	}
}

// fakePoint is a size with 1-node saves of the given server durations.
func fakePoint(nodes int, graph int64, metaBytes int64, durs ...int64) *scalePoint {
	p := &scalePoint{size: scaleSize{spec: num(int64(nodes)), nodes: nodes}, nodes: nodes, dataBytes: graph}
	for _, d := range durs {
		c := changeSave{nodes: 1, node: "OBx", meta: saveMeta{manifest: 1000, tree: metaBytes - 1000}}
		c.save.answer.DurationMS, c.save.wall = d, time.Duration(d+1)*time.Millisecond
		p.oneNode = append(p.oneNode, c)
	}
	p.onePct = changeSave{nodes: nodes / 100}
	p.serveAfterSaves.hwm, p.onStart.hwm, p.restore.maxRSS = graph+100e6, graph+50e6, graph+200e6
	return p
}

func TestScaleTargets(t *testing.T) {
	r := &scaleResults{points: []*scalePoint{fakePoint(2000, 20e6, 9000, 20, 10, 30), fakePoint(20000, 200e6, 5000, 25, 40, 20)}}
	rows := r.targetRows()
	if len(rows) != 2+3+3 {
		t.Fatalf("%d rows:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	for i, want := range []string{
		"25 ms ÷ 20 ms = 1.25× | met |", // medians
		"26 ms ÷ 21 ms = 1.24× | met |",
		"worst 5,000 B, median 5,000 B (of 3) | met |",
		"| 300.0 MB (load and saves 300.0 MB, restore on start 250.0 MB) | met |", // ≤ 450 MB
		"| 400.0 MB | **not met** |",                                              // > 350 MB
		"| 2,000 nodes | ≤ 8 KB | worst 9,000 B",
	} {
		if !strings.Contains(rows[i], want) {
			t.Errorf("row %d: %s\nwant it to contain %q", i, rows[i], want)
		}
	}
	if !strings.Contains(rows[0], "| 20,000 nodes |") || !strings.HasSuffix(rows[5], "| **not met** |") {
		t.Errorf("rows 0 and 5:\n%s\n%s", rows[0], rows[5])
	}
	if notes := r.rewriteNotes(); len(notes) != 0 {
		t.Errorf("notes without a rewrite: %q", notes)
	}
	r.points[1].oneNode[2].meta.data, r.points[1].oneNode[2].nodeBytes = 5e6, 2000
	if notes := r.rewriteNotes(); len(notes) != 1 || !strings.Contains(notes[0], "20,000 nodes: a 1-node save rewrites") ||
		!strings.Contains(notes[0], "1 of the 3 1-node saves") {
		t.Errorf("rewrite notes: %q", notes)
	}
	r.points = r.points[1:]
	if rows := r.targetRows(); !strings.Contains(rows[0], "not measured") {
		t.Errorf("without 2,000 nodes: %s", rows[0])
	}
	if cell, v := ratioCell(time.Second, 0, 1.5); v != "not measured" || !strings.Contains(cell, "no ratio") {
		t.Errorf("ratio over 0: %s, %s", cell, v)
	}
}

func TestScaleSectionWrite(t *testing.T) {
	r := &scaleResults{command: "go run ./cmd/pitr-bench --scale", points: []*scalePoint{fakePoint(2000, 20e6, 9000, 20)},
		journal: []journalRun{{label: "a", puts: 10, wall: time.Second}, {label: "b", puts: 20, wall: time.Second}}}
	md := r.markdown()
	if !strings.HasPrefix(md, scaleBegin+"\n") || !strings.HasSuffix(md, scaleEnd+"\n") {
		t.Fatalf("section not within its markers:\n%s", md)
	}
	if !strings.Contains(md, "Throughput with fsync ÷ without: 0.50.") {
		t.Error("no journal ratio")
	}
	path := filepath.Join(t.TempDir(), "B.md")
	other := "<!-- pitr-bench --journal: begin. x -->\nj\n<!-- pitr-bench --journal: end -->\n"
	if err := os.WriteFile(path, []byte("# main\n\n"+other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "scale", md); err != nil {
		t.Fatal(err)
	}
	if err := writeMainReport(path, "# new main\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if doc := string(b); !strings.Contains(doc, other) || !strings.Contains(doc, md) || !strings.HasPrefix(doc, "# new main\n") {
		t.Errorf("the main report's --write lost a section:\n%s", doc)
	}
}

func TestChangedSpanAndFloor(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"abcdef", "abXdYf", "XdY"},
		{"abc", "abc", ""},
		{"abc", "Xbc", "X"},
		{"abc", "abX", "X"},
	} {
		if got := string(changedSpan([]byte(c.a), []byte(c.b))); got != c.want {
			t.Errorf("changedSpan(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
	zeros := make([]byte, 64<<10)
	f := measureFloor(context.Background(), zeros)
	if f.raw != int64(len(zeros)) || len(f.sizes) != 3 || f.sizes[0].size <= 0 || f.best() >= f.raw/10 {
		t.Fatalf("64 KiB of zeros: floor %+v", f)
	}
	if cell := f.cell(f.raw); !strings.Contains(cell, "lz4 (pitr's)") {
		t.Errorf("cell %q", cell)
	}
}
