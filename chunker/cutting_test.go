package chunker

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/internal/graphgen"
)

// The cutting measurement (see CUTTING.md): the 2,000-node graph of
// graphgen, framed by standInRecords, cut; then a 1 % change (graphgen.Mutate)
// and cut again, for several mutation seeds. Run it with
//
//	PITR_BENCH=1 go test ./chunker -run TestCuttingReport -v
//
// (PITR_BENCH=sweep also prints the parameter sweep.)

const (
	benchSeed  = 1
	benchNodes = 2000
	benchRuns  = 20 // mutation seeds 1..benchRuns
	benchFrac  = 0.01
)

// standInRecords frames nodes as a stand-in for the real session encoding:
// a header record, then per node a record of a 4-byte big-endian length of
// the rest, a 1-byte id length, the id and the data; then a trailer record.
func standInRecords(nodes []graphgen.Node) [][]byte {
	recs := make([][]byte, 0, len(nodes)+2)
	recs = append(recs, binary.BigEndian.AppendUint32([]byte("PITR-STANDIN-1"), uint32(len(nodes))))
	for _, nd := range nodes {
		r := make([]byte, 0, 5+len(nd.ID)+len(nd.Data))
		r = binary.BigEndian.AppendUint32(r, uint32(1+len(nd.ID)+len(nd.Data)))
		r = append(r, byte(len(nd.ID)))
		r = append(r, nd.ID...)
		r = append(r, nd.Data...)
		recs = append(recs, r)
	}
	return append(recs, binary.BigEndian.AppendUint32([]byte("END"), uint32(len(nodes))))
}

type cutter struct {
	name string
	cut  func(records [][]byte) []Chunk
}

type cutResult struct {
	chunks, totalRaw, totalLZ4         int
	newChunks, newRaw, newLZ4, changed int // sums over runs
	runs                               int
}

func (r cutResult) row(name string) string {
	return fmt.Sprintf("| %s | %d | %.1f KiB | %.1f | %.1f KiB | %.1f KiB | %.1f KiB | %.2f | %.2f |",
		name, r.chunks, float64(r.totalRaw)/float64(r.chunks)/1024,
		float64(r.newChunks)/float64(r.runs),
		float64(r.changed)/float64(r.runs)/1024,
		float64(r.newRaw)/float64(r.runs)/1024, float64(r.newLZ4)/float64(r.runs)/1024,
		float64(r.newRaw)/float64(r.changed), float64(r.newLZ4)/float64(r.changed))
}

const tableHead = "| cutter | chunks | mean chunk | new chunks / change | changed bytes / change | new raw / change | new lz4 / change | raw ÷ changed | lz4 ÷ changed |\n" +
	"|---|---|---|---|---|---|---|---|---|"

func mustCompressedLen(tb testing.TB, data []byte) int {
	tb.Helper()
	z, err := Compress(data)
	if err != nil {
		tb.Fatal(err)
	}
	return len(z)
}

// A scenario makes the change of one run.
type scenario func(base []graphgen.Node, seed uint64) (changed []graphgen.Node, changedBytes int)

// uniformChange is the benchmark's change: 1 % of the nodes, picked uniformly.
func uniformChange(base []graphgen.Node, seed uint64) ([]graphgen.Node, int) {
	return graphgen.Mutate(base, seed, benchFrac)
}

// largeChange edits 10 % of the nodes above graphgen.SmallNode (materials
// and meshes), one region of at most 8 KiB in each.
func largeChange(base []graphgen.Node, seed uint64) ([]graphgen.Node, int) {
	var large []graphgen.Node
	for _, nd := range base {
		if len(nd.Data) > graphgen.SmallNode {
			large = append(large, nd)
		}
	}
	return graphgen.Mutate(large, seed, 0.1)
}

// measure cuts the base graph and benchRuns changes of it.
func measure(tb testing.TB, base []graphgen.Node, c cutter, change scenario, withLZ4 bool) cutResult {
	tb.Helper()
	var r cutResult
	have := map[ID]bool{}
	for _, ch := range c.cut(standInRecords(base)) {
		r.chunks++
		r.totalRaw += len(ch.Data)
		if withLZ4 {
			r.totalLZ4 += mustCompressedLen(tb, ch.Data)
		}
		have[ch.ID] = true
	}
	for seed := uint64(1); seed <= benchRuns; seed++ {
		changed, n := change(base, seed)
		after := graphgen.Apply(base, changed)
		seen := map[ID]bool{}
		for _, ch := range c.cut(standInRecords(after)) {
			if have[ch.ID] || seen[ch.ID] {
				continue
			}
			seen[ch.ID] = true
			r.newChunks++
			r.newRaw += len(ch.Data)
			if withLZ4 {
				r.newLZ4 += mustCompressedLen(tb, ch.Data)
			}
		}
		r.changed += n
		r.runs++
	}
	return r
}

func TestCuttingReport(t *testing.T) {
	mode := os.Getenv("PITR_BENCH")
	if mode == "" {
		t.Skip("set PITR_BENCH=1 (or sweep) to measure the cutters")
	}
	base := graphgen.Generate(benchSeed, benchNodes)
	total := 0
	for _, nd := range base {
		total += len(nd.Data)
	}
	chosen := []cutter{
		{"SplitStream (generic CDC)", streamCut(streamParams)},
		{"SplitRecords (aligned)", recordCut(defaultRecordParams)},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "graph: %d nodes, %d data bytes; %d runs of a %.0f %% change (uniform pick)\n\n%s\n",
		len(base), total, benchRuns, benchFrac*100, tableHead)
	var initial []string
	for _, c := range chosen {
		r := measure(t, base, c, uniformChange, true)
		fmt.Fprintln(&b, r.row(c.name))
		initial = append(initial, fmt.Sprintf("%s %d bytes", c.name, r.totalLZ4))
	}
	fmt.Fprintf(&b, "\ninitial upload (lz4): %s\n", strings.Join(initial, ", "))
	fmt.Fprintf(&b, "\n%d runs editing 10 %% of the materials and meshes (one region of <= 8 KiB each):\n\n%s\n",
		benchRuns, tableHead)
	for _, c := range chosen {
		fmt.Fprintln(&b, measure(t, base, c, largeChange, true).row(c.name))
	}
	if mode == "sweep" {
		cs := sweep()
		rows := make([]string, len(cs))
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() {
				r := measure(t, base, c, uniformChange, true)
				l := measure(t, base, c, largeChange, false)
				rows[i] = r.row(c.name) + fmt.Sprintf(" %.2f |", float64(l.newRaw)/float64(l.changed))
			})
		}
		wg.Wait()
		fmt.Fprintf(&b, "\nsweep, 1 %% change (last column: raw ÷ changed for large-node edits):\n\n%s\n%s\n",
			strings.Replace(tableHead, "lz4 ÷ changed |", "lz4 ÷ changed | large: raw ÷ changed |", 1)+"---|",
			strings.Join(rows, "\n"))
	}
	t.Log("\n" + b.String())
}

func streamCut(p cdcParams) func([][]byte) []Chunk {
	return func(records [][]byte) []Chunk {
		var s cdcSplitter
		return s.split(nil, joinRecords(records), p)
	}
}

func recordCut(p recordParams) func([][]byte) []Chunk {
	return func(records [][]byte) []Chunk { return splitRecords(records, p) }
}

func joinRecords(records [][]byte) []byte {
	n := 0
	for _, r := range records {
		n += len(r)
	}
	out := make([]byte, 0, n)
	for _, r := range records {
		out = append(out, r...)
	}
	return out
}

// sweep lists the settings tried while tuning.
func sweep() []cutter {
	var cs []cutter
	for _, p := range []cdcParams{
		{min: 16 << 10, max: 256 << 10, bits: 16}, // ~80 KiB
		{min: 8 << 10, max: 128 << 10, bits: 15},  // ~40 KiB
		{min: 4 << 10, max: 64 << 10, bits: 14},   // ~20 KiB
		{min: 2 << 10, max: 64 << 10, bits: 13},   // ~10 KiB
		{min: 1 << 10, max: 32 << 10, bits: 12},   // ~5 KiB
	} {
		cs = append(cs, cutter{fmt.Sprintf("stream cdc %dK/2^%d/%dK", p.min>>10, p.bits, p.max>>10), streamCut(p)})
	}
	rec := func(p recordParams) cutter {
		name := fmt.Sprintf("records alone>=%dK every %d gmax %dK split>%dK cdc %dK/2^%d/%dK",
			p.alone>>10, p.groupEvery, p.groupMax>>10, p.splitAbove>>10, p.cdc.min>>10, p.cdc.bits, p.cdc.max>>10)
		return cutter{name, recordCut(p)}
	}
	d := defaultRecordParams
	// every 1: no grouping at all.
	p := d
	p.groupEvery = 1
	cs = append(cs, rec(p))
	for _, alone := range []int{2 << 10, 4 << 10, 8 << 10, 16 << 10} {
		for _, every := range []uint64{2, 4, 8} {
			for _, gmax := range []int{8 << 10, 16 << 10, 32 << 10} {
				p := d
				p.alone, p.groupEvery, p.groupMax = alone, every, gmax
				cs = append(cs, rec(p))
			}
		}
	}
	for _, split := range []int{16 << 10, 64 << 10} {
		for _, in := range []cdcParams{
			{min: 4 << 10, max: 64 << 10, bits: 14},
			{min: 2 << 10, max: 64 << 10, bits: 13},
			{min: 2 << 10, max: 32 << 10, bits: 12},
			{min: 1 << 10, max: 32 << 10, bits: 12},
		} {
			p := d
			p.splitAbove, p.cdc = split, in
			cs = append(cs, rec(p))
		}
	}
	return cs
}

// BenchmarkCutting times both cutters on the 2,000-node graph and reports
// the raw bytes of new chunks per byte changed by a 1 % change.
func BenchmarkCutting(b *testing.B) {
	base := graphgen.Generate(benchSeed, benchNodes)
	recs := standInRecords(base)
	stream := joinRecords(recs)
	for _, c := range []cutter{
		{"stream", func([][]byte) []Chunk { return SplitStream(stream) }},
		{"records", func([][]byte) []Chunk { return SplitRecords(recs) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				c.cut(recs)
			}
			b.StopTimer()
			var r cutResult
			switch c.name {
			case "stream":
				r = measure(b, base, cutter{c.name, streamCut(streamParams)}, uniformChange, false)
			default:
				r = measure(b, base, cutter{c.name, recordCut(defaultRecordParams)}, uniformChange, false)
			}
			b.ReportMetric(float64(r.newRaw)/float64(r.changed), "new/changed")
			b.ReportMetric(float64(r.chunks), "chunks")
		})
	}
}
