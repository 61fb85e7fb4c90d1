package chunker

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPolynomial(t *testing.T) {
	if Polynomial.Deg() != 53 || !Polynomial.Irreducible() {
		t.Fatalf("Polynomial %v: degree %d, irreducible %v", Polynomial, Polynomial.Deg(), Polynomial.Irreducible())
	}
}

// testRecords returns n records of mixed sizes: mostly 100 B–12 KiB, some
// 20–100 KiB, a few up to 1 MiB.
func testRecords(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	recs := make([][]byte, n)
	for i := range recs {
		var size int
		switch r := rng.IntN(100); {
		case r < 90:
			size = 100 + rng.IntN(12<<10)
		case r < 98:
			size = 20<<10 + rng.IntN(80<<10)
		default:
			size = 100<<10 + rng.IntN(900<<10)
		}
		recs[i] = testData(size, rng.Uint64())
	}
	return recs
}

func concat(chunks []Chunk) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		b.Write(c.Data)
	}
	return b.Bytes()
}

func ids(chunks []Chunk) map[ID]int {
	m := map[ID]int{}
	for _, c := range chunks {
		m[c.ID] += len(c.Data)
	}
	return m
}

// checkChunks verifies ids, sizes and the concatenation property.
func checkChunks(t *testing.T, chunks []Chunk, want []byte) {
	t.Helper()
	for i, c := range chunks {
		if len(c.Data) == 0 {
			t.Fatalf("chunk %d is empty", i)
		}
		if len(c.Data) > MaxChunkSize {
			t.Fatalf("chunk %d: %d bytes > MaxChunkSize", i, len(c.Data))
		}
		if Sum(c.Data) != c.ID {
			t.Fatalf("chunk %d: id does not match data", i)
		}
	}
	if !bytes.Equal(concat(chunks), want) {
		t.Fatal("concatenation of chunks differs from the input")
	}
}

// checkAligned verifies that every chunk is either whole records or a piece
// of one record.
func checkAligned(t *testing.T, records [][]byte, chunks []Chunk) {
	t.Helper()
	var starts []int // start offset of each non-empty record
	bounds := map[int]bool{0: true}
	off := 0
	for _, r := range records {
		if len(r) > 0 {
			starts = append(starts, off)
		}
		off += len(r)
		bounds[off] = true
	}
	recAt := func(pos int) int { // index in starts of the record holding pos
		i, found := slices.BinarySearch(starts, pos)
		if !found {
			i--
		}
		return i
	}
	pos := 0
	for i, c := range chunks {
		end := pos + len(c.Data)
		if !(bounds[pos] && bounds[end]) && recAt(pos) != recAt(end-1) {
			t.Fatalf("chunk %d [%d,%d) straddles a record boundary without being whole records", i, pos, end)
		}
		pos = end
	}
}

func TestSplitEmpty(t *testing.T) {
	if c := SplitStream(nil); len(c) != 0 {
		t.Errorf("SplitStream(nil) = %d chunks", len(c))
	}
	if c := SplitRecords(nil); len(c) != 0 {
		t.Errorf("SplitRecords(nil) = %d chunks", len(c))
	}
	if c := SplitRecords([][]byte{{}, {}}); len(c) != 0 {
		t.Errorf("SplitRecords(empty records) = %d chunks", len(c))
	}
}

func TestSplitConcatAndDeterminism(t *testing.T) {
	recs := testRecords(1, 400)
	stream := bytes.Join(recs, nil)

	s1, s2 := SplitStream(stream), SplitStream(bytes.Clone(stream))
	checkChunks(t, s1, stream)
	r1, r2 := SplitRecords(recs), SplitRecords(testRecords(1, 400))
	checkChunks(t, r1, stream)
	checkAligned(t, recs, r1)
	for name, pair := range map[string][2][]Chunk{"stream": {s1, s2}, "records": {r1, r2}} {
		a, b := pair[0], pair[1]
		if len(a) != len(b) {
			t.Fatalf("%s: %d vs %d chunks", name, len(a), len(b))
		}
		for i := range a {
			if a[i].ID != b[i].ID {
				t.Fatalf("%s: chunk %d differs between runs", name, i)
			}
		}
	}
	for i, c := range s1 {
		if len(c.Data) > int(streamParams.max) || (i < len(s1)-1 && len(c.Data) < int(streamParams.min)) {
			t.Errorf("stream chunk %d: %d bytes out of bounds", i, len(c.Data))
		}
	}
	for i, c := range r1 {
		if len(c.Data) > int(defaultRecordParams.cdc.max) {
			t.Errorf("record chunk %d: %d bytes > %d", i, len(c.Data), defaultRecordParams.cdc.max)
		}
	}
}

// newBytes returns the bytes of chunks in after that are not in before.
func newBytes(before, after []Chunk) int {
	have := ids(before)
	n := 0
	for id, size := range ids(after) {
		if _, ok := have[id]; !ok {
			n += size
		}
	}
	return n
}

func TestSplitRecordsLocality(t *testing.T) {
	recs := testRecords(2, 300)
	before := SplitRecords(recs)
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := range 12 {
		i := 1 + rng.IntN(len(recs)-2)
		changed := make([][]byte, len(recs))
		copy(changed, recs)
		r := bytes.Clone(recs[i])
		off := rng.IntN(len(r))
		n := min(len(r)-off, 1+rng.IntN(4096))
		for j := off; j < off+n; j++ {
			r[j] ^= 0xA5
		}
		changed[i] = r
		after := SplitRecords(changed)
		checkChunks(t, after, bytes.Join(changed, nil))
		// A change in record i may touch its group and the next one
		// (8 KiB each at most, plus one record under 2 KiB), or the CDC
		// chunks covering the change and the next cut (64 KiB each).
		limit := 2*(8<<10+2<<10) + 2*int(defaultRecordParams.cdc.max) + n
		if got := newBytes(before, after); got == 0 || got > limit {
			t.Errorf("trial %d: changing %d bytes of record %d (%d bytes) made %d new bytes, limit %d",
				trial, n, i, len(r), got, limit)
		}
		// The chunks before the changed record are all unchanged.
		pos, prefix := 0, 0
		for _, rr := range recs[:i] {
			prefix += len(rr)
		}
		for k, c := range before {
			if pos+len(c.Data) > prefix-16<<10 {
				break
			}
			if after[k].ID != c.ID {
				t.Fatalf("trial %d: chunk %d far before the change differs", trial, k)
			}
			pos += len(c.Data)
		}
	}
}

func TestSplitRecordsInsertDelete(t *testing.T) {
	recs := testRecords(3, 500)
	before := SplitRecords(recs)
	ins := append(append(append([][]byte{}, recs[:250]...), []byte("a new small record")), recs[250:]...)
	del := append(append([][]byte{}, recs[:100]...), recs[101:]...)
	for name, rs := range map[string][][]byte{"insert": ins, "delete": del} {
		after := SplitRecords(rs)
		checkChunks(t, after, bytes.Join(rs, nil))
		if got := newBytes(before, after); got > 300<<10 {
			t.Errorf("%s: %d new bytes", name, got)
		}
	}
}

func TestSplitStreamLocality(t *testing.T) {
	stream := bytes.Join(testRecords(4, 400), nil)
	before := SplitStream(stream)
	changed := bytes.Clone(stream)
	off := len(changed) / 3
	for j := off; j < off+1000; j++ {
		changed[j] ^= 0x3C
	}
	after := SplitStream(changed)
	checkChunks(t, after, changed)
	if got := newBytes(before, after); got == 0 || got > 3*int(streamParams.max) {
		t.Errorf("changing 1000 bytes made %d new bytes", got)
	}
	// Inserting bytes shifts offsets but CDC resynchronises.
	ins := append(append(bytes.Clone(stream[:off]), "inserted bytes"...), stream[off:]...)
	if got := newBytes(before, SplitStream(ins)); got > 3*int(streamParams.max) {
		t.Errorf("inserting 14 bytes made %d new bytes", got)
	}
}

func TestSplitRecordsGroupCap(t *testing.T) {
	// Tiny records that never end a group by hash are cut at groupMax.
	p := defaultRecordParams
	p.groupEvery = 1 << 62
	recs := make([][]byte, 1000)
	for i := range recs {
		recs[i] = binary.BigEndian.AppendUint32([]byte("rec"), uint32(i))
	}
	chunks := splitRecords(recs, p)
	checkChunks(t, chunks, bytes.Join(recs, nil))
	for i, c := range chunks[:len(chunks)-1] {
		if len(c.Data) < p.groupMax || len(c.Data) >= p.groupMax+7 {
			t.Errorf("group %d: %d bytes, want about %d", i, len(c.Data), p.groupMax)
		}
	}
}

func FuzzSplitRecords(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3, 0, 5, 'h', 'e', 'l', 'l', 'o'}, uint16(0))
	f.Add(testData(5000, 1), uint16(3000))
	f.Fuzz(func(t *testing.T, in []byte, big uint16) {
		// in is a sequence of (length byte, bytes) records; big, when set,
		// appends a record of 16 KiB + big bytes so that SplitRecords cuts
		// a large record too.
		var recs [][]byte
		in0 := in
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			recs = append(recs, in[1:1+n])
			in = in[1+n:]
		}
		if big > 0 {
			recs = append(recs, bytes.Repeat(append([]byte{byte(big)}, in0...), 1+(16<<10+int(big))/(len(in0)+1))[:16<<10+int(big)])
		}
		want := bytes.Join(recs, nil)
		// Small parameters so fuzz inputs reach every path.
		p := recordParams{groupEvery: 3, groupMax: 600, alone: 200, splitAbove: 500,
			cdc: cdcParams{min: 256, max: 2048, bits: 8}}
		small := splitRecords(recs, p)
		for _, chunks := range [][]Chunk{small, SplitRecords(recs)} {
			checkChunks(t, chunks, want)
			checkAligned(t, recs, chunks)
		}
		// Deterministic, also when the records are copies.
		copies := make([][]byte, len(recs))
		for i, r := range recs {
			copies[i] = bytes.Clone(r)
		}
		again := splitRecords(copies, p)
		if !slices.EqualFunc(small, again, func(a, b Chunk) bool { return a.ID == b.ID }) {
			t.Fatal("splitRecords is not deterministic")
		}
		checkChunks(t, SplitStream(want), want)
	})
}
