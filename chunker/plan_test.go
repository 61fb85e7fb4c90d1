package chunker

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"weak"

	"github.com/pitr-dev/pitr/internal/graphgen"
)

// testSource is a RecordSource over records in memory. Keys are ints the
// test hands out, a fresh one for each new or changed record. Bytes counts
// its calls and returns a copy, which scribble later overwrites, so that a
// Planner keeping bytes it was given would go wrong.
type testSource struct {
	recs   [][]byte
	keys   []any
	calls  int
	reads  map[int]int // by index, when set
	given  [][]byte
	nextID int
}

func newTestSource(recs [][]byte) *testSource {
	s := &testSource{}
	for _, r := range recs {
		s.insert(len(s.recs), r)
	}
	return s
}

func (s *testSource) Len() int      { return len(s.recs) }
func (s *testSource) Key(i int) any { return s.keys[i] }
func (s *testSource) Bytes(i int) []byte {
	s.calls++
	if s.reads != nil {
		s.reads[i]++
	}
	b := bytes.Clone(s.recs[i])
	s.given = append(s.given, b)
	return b
}

var scribbled = [4096]byte{0: 0xEE, 1000: 0xEE, 4095: 0xEE}

// scribble overwrites every copy Bytes returned.
func (s *testSource) scribble() {
	for _, b := range s.given {
		for len(b) > 0 {
			b = b[copy(b, scribbled[:]):]
		}
	}
	s.given = nil
}

func (s *testSource) key() any { s.nextID++; return s.nextID }

func (s *testSource) set(i int, r []byte) { s.recs[i], s.keys[i] = r, s.key() }

func (s *testSource) insert(i int, r []byte) {
	s.recs, s.keys = slices.Insert(s.recs, i, r), slices.Insert(s.keys, i, s.key())
}

func (s *testSource) delete(i int) {
	s.recs, s.keys = slices.Delete(s.recs, i, i+1), slices.Delete(s.keys, i, i+1)
}

// randBytes returns n random bytes.
func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j], v = byte(v), v>>8
		}
	}
	return b
}

// smallRecord returns a random record of n bytes (under 2 KiB) that does
// not end its group by its hash, when open is set.
func smallRecord(rng *rand.Rand, n int, open bool) []byte {
	r := randBytes(rng, n)
	for open && endsGroup(r, defaultRecordParams.groupEvery) {
		r[0]++
	}
	return r
}

// boundarySizes are the record sizes at SplitRecords' thresholds.
var boundarySizes = []int{1, 2<<10 - 1, 2 << 10, 2<<10 + 1, 16<<10 - 1, 16 << 10, 16<<10 + 1}

// planRecords returns about n records of every kind SplitRecords treats
// apart: empty records, records at the size thresholds, large random and
// low-entropy records (large to 3 × large bytes), and runs of small records
// that no hash ends, so that groups end at groupMax.
func planRecords(rng *rand.Rand, n, large int) [][]byte {
	var recs [][]byte
	for len(recs) < n {
		switch k := rng.IntN(40); {
		case k < 2:
			recs = append(recs, []byte{})
		case k < 6:
			recs = append(recs, randBytes(rng, boundarySizes[rng.IntN(len(boundarySizes))]))
		case k < 7:
			recs = append(recs, randBytes(rng, large+rng.IntN(2*large)))
		case k < 8: // low entropy: zeros, a short pattern, or testData
			size := large + rng.IntN(2*large)
			switch rng.IntN(3) {
			case 0:
				recs = append(recs, make([]byte, size))
			case 1:
				recs = append(recs, bytes.Repeat([]byte("pitr node "), size/10))
			default:
				recs = append(recs, testData(size, rng.Uint64()))
			}
		case k < 10: // a run hitting the 8 KiB group max
			for range 5 + rng.IntN(30) {
				recs = append(recs, smallRecord(rng, 1000+rng.IntN(1<<10), true))
			}
		case k < 12: // a run of tiny records, some empty
			for range 10 + rng.IntN(100) {
				recs = append(recs, smallRecord(rng, rng.IntN(40), false))
			}
		default:
			recs = append(recs, smallRecord(rng, 1+rng.IntN(2<<10-1), false))
		}
	}
	return recs
}

// checkPlan verifies that plan, of src, is want chunk by chunk, and that
// Data gives each chunk's bytes.
func checkPlan(t *testing.T, src *testSource, plan []PlannedChunk, want []Chunk) {
	t.Helper()
	if len(plan) != len(want) {
		t.Fatalf("plan has %d chunks, SplitRecords %d", len(plan), len(want))
	}
	for k, c := range plan {
		w := want[k]
		if c.ID != w.ID || c.Size != len(w.Data) {
			t.Fatalf("chunk %d: plan %v %d bytes, SplitRecords %v %d bytes", k, c.ID, c.Size, w.ID, len(w.Data))
		}
		if !bytes.Equal(Data(src, c), w.Data) {
			t.Fatalf("chunk %d: Data differs from SplitRecords' data", k)
		}
		if c.First > c.Last || len(src.recs[c.First]) == 0 || len(src.recs[c.Last]) == 0 {
			t.Fatalf("chunk %d: records %d..%d are not non-empty ends", k, c.First, c.Last)
		}
		if c.StartsRecord() != (c.Offset == 0) || (c.Offset != 0 && (c.First != c.Last || k == 0 || plan[k-1].First != c.First)) {
			t.Fatalf("chunk %d: offset %d in records %d..%d", k, c.Offset, c.First, c.Last)
		}
	}
}

// replan plans src with p and checks the plan against a fresh
// SplitRecords; it returns the plan and the number of Bytes calls.
func replan(t *testing.T, p *Planner, src *testSource) ([]PlannedChunk, int) {
	t.Helper()
	src.scribble()
	src.calls = 0
	plan := p.Plan(src)
	calls := src.calls
	src.scribble()
	checkPlan(t, src, plan, splitRecords(src.recs, p.cutParams()))
	if len(p.records) > src.Len() || len(p.groups) > len(plan) {
		t.Fatalf("planner remembers %d records and %d groups for %d records and %d chunks",
			len(p.records), len(p.groups), src.Len(), len(plan))
	}
	return plan, calls
}

func TestPlanEmpty(t *testing.T) {
	var p Planner
	for _, recs := range [][][]byte{nil, {{}}, {{}, {}, {}}} {
		if plan, calls := replan(t, &p, newTestSource(recs)); len(plan) != 0 || calls > len(recs) {
			t.Errorf("%d empty records: %d chunks, %d calls", len(recs), len(plan), calls)
		}
	}
}

func TestPlanEquivalence(t *testing.T) {
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 7))
		src := newTestSource(planRecords(rng, 300, 100<<10))
		var p Planner
		// A first plan reads each record once.
		if _, calls := replan(t, &p, src); calls != src.Len() {
			t.Errorf("seed %d: first plan made %d calls for %d records", seed, calls, src.Len())
		}
		// Planning the same records again reads none of them.
		if _, calls := replan(t, &p, src); calls != 0 {
			t.Errorf("seed %d: unchanged plan made %d calls", seed, calls)
		}
	}
}

// TestPlanBoundaries cuts each threshold size alone, between small
// records, and in runs.
func TestPlanBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, size := range boundarySizes {
		for _, recs := range [][][]byte{
			{randBytes(rng, size)},
			{smallRecord(rng, 100, true), randBytes(rng, size), smallRecord(rng, 100, true)},
			{randBytes(rng, size), {}, randBytes(rng, size), randBytes(rng, size)},
		} {
			var p Planner
			replan(t, &p, newTestSource(recs))
		}
	}
}

// TestPlanGroupMax: tiny records that never end a group by hash make
// groups cut at groupMax only.
func TestPlanGroupMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	var recs [][]byte
	for range 400 {
		recs = append(recs, smallRecord(rng, 50+rng.IntN(200), true))
	}
	var p Planner
	plan, _ := replan(t, &p, newTestSource(recs))
	for k, c := range plan[:len(plan)-1] {
		if c.Size < defaultRecordParams.groupMax {
			t.Fatalf("group %d: %d bytes, under groupMax", k, c.Size)
		}
	}
}

// chunkAt returns the index of the chunk of plan holding record i.
func chunkAt(plan []PlannedChunk, i int) int {
	return slices.IndexFunc(plan, func(c PlannedChunk) bool { return c.First <= i && i <= c.Last })
}

// members returns the number of non-empty records of chunk k of plan.
func members(src *testSource, plan []PlannedChunk, k int) int {
	if k < 0 || k >= len(plan) {
		return 0
	}
	n := 0
	for i := plan[k].First; i <= plan[k].Last; i++ {
		if len(src.recs[i]) > 0 {
			n++
		}
	}
	return n
}

// readBound is the most Bytes calls Plan may make for after, given the
// plan before: one per record with a new key, plus the members of each
// group of several records that is new.
func readBound(src *testSource, before, after []PlannedChunk, oldKeys map[any]bool) int {
	n := 0
	for _, k := range src.keys {
		if !oldKeys[k] {
			n++
		}
	}
	had := map[ID]bool{}
	for _, c := range before {
		had[c.ID] = true
	}
	for k, c := range after {
		if c.First != c.Last && !had[c.ID] {
			n += members(src, after, k)
		}
	}
	return n
}

// TestPlanEdits changes, inserts and deletes records between plans, and
// checks each plan against SplitRecords and its Bytes calls against the
// records and groups that changed.
func TestPlanEdits(t *testing.T) {
	const editLarge = 20 << 10 // large records of 20–60 KiB, to keep it quick
	smallEdits := 0
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 11))
		src := newTestSource(planRecords(rng, 400, editLarge))
		var p Planner
		before, _ := replan(t, &p, src)
		for step := range 60 {
			oldKeys := map[any]bool{}
			for _, k := range src.keys {
				oldKeys[k] = true
			}
			i := rng.IntN(src.Len())
			var what string
			switch op := rng.IntN(7); {
			case op < 2 && len(src.recs[i]) > 0 && len(src.recs[i]) < 2<<10:
				what = "change small"
				src.set(i, smallRecord(rng, 1+rng.IntN(2<<10-1), false))
			case op < 3 && len(src.recs[i]) > 16<<10:
				what = "change large"
				r := bytes.Clone(src.recs[i])
				off := rng.IntN(len(r))
				for j := off; j < min(len(r), off+1+rng.IntN(8<<10)); j++ {
					r[j] ^= 0x5A
				}
				src.set(i, r)
			case op < 4:
				what = "insert"
				src.insert(i, planRecords(rng, 1, editLarge)[0])
			case op < 5:
				what = "delete"
				src.delete(i)
			case op < 6:
				what = "empty or fill"
				if len(src.recs[i]) == 0 {
					src.set(i, smallRecord(rng, 300, false))
				} else {
					src.set(i, nil)
				}
			default:
				what = "change several"
				for range 1 + rng.IntN(5) {
					j := rng.IntN(src.Len())
					src.set(j, planRecords(rng, 1, editLarge)[0])
				}
			}
			after, calls := replan(t, &p, src)
			if bound := readBound(src, before, after, oldKeys); calls > bound {
				t.Errorf("seed %d step %d (%s at %d): %d Bytes calls, bound %d", seed, step, what, i, calls, bound)
			}
			switch what {
			case "change small":
				// At most its group and the next are read, unless these
				// were cut at groupMax: then the change of size or of
				// group end may move the cuts of following groups too.
				k := chunkAt(after, i)
				capped := func(k int) bool {
					return k < len(after) && after[k].First != after[k].Last && after[k].Size >= defaultRecordParams.groupMax
				}
				if capped(k) || capped(k+1) {
					break
				}
				smallEdits++
				if bound := members(src, after, k) + members(src, after, k+1); calls < 1 || calls > bound {
					t.Errorf("seed %d step %d: changing small record %d made %d Bytes calls, want 1..%d",
						seed, step, i, calls, bound)
				}
			case "change large":
				if calls != 1 {
					t.Errorf("seed %d step %d: changing large record %d made %d Bytes calls, want 1", seed, step, i, calls)
				}
			}
			before = after
		}
	}
	t.Logf("%d edits of small records checked against the group bound", smallEdits)
	if smallEdits < 20 {
		t.Errorf("only %d edits of small records checked against the group bound", smallEdits)
	}
}

// TestPlanKeys: records without a key are read on every plan, and records
// with equal keys once.
func TestPlanKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	src := newTestSource(planRecords(rng, 100, 100<<10))
	src.keys[0], src.keys[len(src.keys)-1] = nil, nil
	shared := randBytes(rng, 5<<10) // a chunk of its own: never read for a group
	for _, i := range []int{10, 20, 30} {
		src.recs[i], src.keys[i] = shared, "shared"
	}
	var p Planner
	src.reads = map[int]int{}
	p.Plan(src)
	if r := src.reads; r[10] != 1 || r[20] != 0 || r[30] != 0 {
		t.Errorf("records with one key read %d, %d, %d times, want 1, 0, 0", r[10], r[20], r[30])
	}
	if _, calls := replan(t, &p, src); calls != 2 {
		t.Errorf("unchanged plan with 2 keyless records made %d Bytes calls, want 2", calls)
	}
}

// TestPlanSmallParams runs the equivalence with small parameters, so that
// short records reach every path, over a series of edits.
func TestPlanSmallParams(t *testing.T) {
	p := Planner{params: recordParams{groupEvery: 3, groupMax: 600, alone: 200, splitAbove: 500,
		cdc: cdcParams{min: 256, max: 2048, bits: 8}}}
	rng := rand.New(rand.NewPCG(6, 6))
	var recs [][]byte
	for range 500 {
		recs = append(recs, randBytes(rng, []int{0, 1, 50, 199, 200, 201, 500, 501, 3000}[rng.IntN(9)]))
	}
	src := newTestSource(recs)
	replan(t, &p, src)
	for range 100 {
		i := rng.IntN(src.Len())
		switch rng.IntN(3) {
		case 0:
			src.set(i, randBytes(rng, rng.IntN(1000)))
		case 1:
			src.insert(i, randBytes(rng, rng.IntN(300)))
		default:
			src.delete(i)
		}
		replan(t, &p, src)
	}
}

func TestPlanDataPanics(t *testing.T) {
	src := newTestSource([][]byte{[]byte("abc"), []byte("def")})
	for _, c := range []PlannedChunk{
		{Size: 4, First: 0, Last: 0},
		{Size: 2, First: 0, Last: 0, Offset: 2},
		{Size: 7, First: 0, Last: 1},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Data(%+v) did not panic", c)
				}
			}()
			Data(src, c)
		}()
	}
	p := Planner{params: defaultRecordParams}
	p.params.groupEvery = 1 << 62 // one group: no record ends one by its hash
	p.Plan(src)
	src.recs[0] = []byte("abcd") // same key, other bytes
	src.recs[1] = []byte("e")    // so that the group is read again
	src.keys[1] = "new"
	defer func() {
		if recover() == nil {
			t.Error("Plan did not panic on a record whose length changed under its key")
		}
	}()
	p.Plan(src)
}

func FuzzPlan(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3, 0, 5, 'h', 'e', 'l', 'l', 'o'}, uint8(1), uint16(0))
	f.Add(testData(5000, 1), uint8(7), uint16(3000))
	f.Fuzz(func(t *testing.T, in []byte, edit uint8, big uint16) {
		// As in FuzzSplitRecords: (length byte, bytes) records, and a
		// large record when big is set. Then record edit is changed.
		var recs [][]byte
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			recs = append(recs, in[1:1+n])
			in = in[1+n:]
		}
		if big > 0 {
			recs = append(recs, testData(16<<10+int(big), uint64(big)))
		}
		for _, params := range []recordParams{{}, {groupEvery: 3, groupMax: 600, alone: 200, splitAbove: 500,
			cdc: cdcParams{min: 256, max: 2048, bits: 8}}} {
			p := Planner{params: params}
			src := newTestSource(recs)
			replan(t, &p, src)
			if len(recs) > 0 {
				i := int(edit) % len(recs)
				src.set(i, append(bytes.Clone(src.recs[i]), edit))
				replan(t, &p, src)
			}
		}
	})
}

// BenchmarkPlan compares cutting 20,000 records after one small record
// changed: Planner.Plan, which reads and hashes only that record and its
// group, against SplitRecords of all records. It also times a first Plan,
// with nothing cached. The records are a 20,000-node graph of graphgen
// (framed by standInRecords: mostly 1–10 KB, some large), or 20,000 small
// records of 100 B–2 KiB, which are all grouped.
func BenchmarkPlan(b *testing.B) {
	const n = 20000
	rng := rand.New(rand.NewPCG(1, 1))
	small := make([][]byte, n)
	for k := range small {
		small[k] = randBytes(rng, 100+rng.IntN(2<<10-100))
	}
	for _, bench := range []struct {
		name string
		recs [][]byte
	}{
		{"graph", standInRecords(graphgen.Generate(benchSeed, n))},
		{"small", small},
	} {
		recs := bench.recs
		total := len(joinRecords(recs))
		// The changed record, in the middle, in two versions.
		i := len(recs) / 2
		for len(recs[i]) >= defaultRecordParams.alone {
			i++
		}
		last := len(recs[i]) - 1
		versions := [2][]byte{recs[i], append(bytes.Clone(recs[i][:last]), ^recs[i][last])}
		b.Run(bench.name+"/Plan 1 changed", func(b *testing.B) {
			src := &benchSource{recs: slices.Clone(recs), keys: make([]any, len(recs))}
			for k := range src.keys {
				src.keys[k] = k
			}
			var p Planner
			p.Plan(src)
			n := 0
			src.reads = 0
			for b.Loop() {
				n++
				src.recs[i], src.keys[i] = versions[n%2], -n
				p.Plan(src)
			}
			b.ReportMetric(float64(src.reads)/float64(n), "reads/op")
		})
		b.Run(bench.name+"/Plan cold", func(b *testing.B) {
			src := &benchSource{recs: recs, keys: make([]any, len(recs))}
			for k := range src.keys {
				src.keys[k] = k
			}
			b.SetBytes(int64(total))
			for b.Loop() {
				var p Planner
				p.Plan(src)
			}
		})
		b.Run(bench.name+"/SplitRecords", func(b *testing.B) {
			b.SetBytes(int64(total))
			for b.Loop() {
				SplitRecords(recs)
			}
		})
	}
}

// benchSource is a RecordSource over records in memory, counting reads.
type benchSource struct {
	recs  [][]byte
	keys  []any
	reads int
}

func (s *benchSource) Len() int           { return len(s.recs) }
func (s *benchSource) Key(i int) any      { return s.keys[i] }
func (s *benchSource) Bytes(i int) []byte { s.reads++; return s.recs[i] }

// A Planner does not keep the records of earlier plans alive: after the
// graph shrinks, the keys (nodes, in a save) it no longer has can be
// collected.
func TestPlanForgetsDroppedKeys(t *testing.T) {
	type node struct{ data []byte }
	rng := rand.New(rand.NewPCG(3, 4))
	nodes := make([]*node, 1000)
	dropped := make([]weak.Pointer[node], 0, len(nodes))
	src := &benchSource{}
	for i := range nodes {
		nodes[i] = &node{data: randBytes(rng, 100+rng.IntN(1000))}
		src.recs, src.keys = append(src.recs, nodes[i].data), append(src.keys, nodes[i])
		if i >= 2 {
			dropped = append(dropped, weak.Make(nodes[i]))
		}
	}
	var p Planner
	p.Plan(src)
	nodes, src = nil, &benchSource{recs: slices.Clone(src.recs[:2]), keys: slices.Clone(src.keys[:2])}
	for range 3 {
		p.Plan(src)
	}
	runtime.GC()
	runtime.GC()
	alive := 0
	for _, w := range dropped {
		if w.Value() != nil {
			alive++
		}
	}
	if alive != 0 {
		t.Errorf("%d of %d dropped keys still reachable after the plans that no longer have them", alive, len(dropped))
	}
	runtime.KeepAlive(&p)
}
