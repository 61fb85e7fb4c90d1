package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
)

func testEntries(seed uint64, n int) []Entry {
	rng := rand.New(rand.NewPCG(seed, 5))
	es := make([]Entry, n)
	for i := range es {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], rng.Uint64())
		es[i] = Entry{ID: chunker.Sum(b[:]), Size: 1 + rng.Int64N(64<<10)}
	}
	return es
}

func decodeAll(t *testing.T, chunks []chunker.Chunk) []Entry {
	t.Helper()
	var out []Entry
	for i, c := range chunks {
		if chunker.Sum(c.Data) != c.ID {
			t.Fatalf("list chunk %d: id does not match data", i)
		}
		es, err := DecodeList(c.Data)
		if err != nil {
			t.Fatalf("list chunk %d: %v", i, err)
		}
		out = append(out, es...)
	}
	return out
}

func TestListRoundTrip(t *testing.T) {
	if got := EncodeList(nil); len(got) != 0 {
		t.Fatalf("EncodeList(nil) = %d chunks", len(got))
	}
	for _, n := range []int{1, 2, 31, 1000, 20000} {
		es := testEntries(uint64(n), n)
		chunks := EncodeList(es)
		if got := decodeAll(t, chunks); !reflect.DeepEqual(got, es) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		if n >= 20000 {
			mean := float64(n) / float64(len(chunks))
			if mean < 28 || mean > 36 {
				t.Errorf("n=%d: %.1f entries per list chunk, want about %d", n, mean, listEvery)
			}
		}
	}
}

func TestListCap(t *testing.T) {
	// Ids that never end a list chunk: the cap cuts at MaxListEntries.
	var es []Entry
	for i := 0; len(es) < 3*MaxListEntries; i++ {
		e := Entry{ID: chunker.Sum([]byte{byte(i), byte(i >> 8)}), Size: 10}
		if binary.BigEndian.Uint64(e.ID[24:])%listEvery != 0 {
			es = append(es, e)
		}
	}
	chunks := EncodeList(es)
	if len(chunks) != 3 {
		t.Fatalf("%d list chunks, want 3", len(chunks))
	}
	for _, c := range chunks {
		if len(c.Data) != listHeaderLen+MaxListEntries*listEntryLen {
			t.Errorf("list chunk of %d bytes", len(c.Data))
		}
	}
}

// TestListLocality: changing one entry re-creates at most two list chunks
// (its own, and the next one if the change moved a boundary).
func TestListLocality(t *testing.T) {
	es := testEntries(1, 3000)
	before := map[chunker.ID]bool{}
	for _, c := range EncodeList(es) {
		before[c.ID] = true
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for range 50 {
		changed := append([]Entry(nil), es...)
		i := rng.IntN(len(changed))
		changed[i] = testEntries(rng.Uint64(), 1)[0]
		newChunks := 0
		for _, c := range EncodeList(changed) {
			if !before[c.ID] {
				newChunks++
			}
		}
		if newChunks < 1 || newChunks > 2 {
			t.Errorf("changing entry %d made %d new list chunks", i, newChunks)
		}
	}
}

func TestDecodeListBad(t *testing.T) {
	good := EncodeList(testEntries(3, 5))[0].Data
	n := binary.BigEndian.Uint32(good[5:])
	withCount := func(c uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[5:], c)
		return b
	}
	withSize := func(size uint32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[listHeaderLen+32:], size)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "truncated"},
		{"short header", good[:6], "truncated"},
		{"bad magic", append([]byte("XLST"), good[4:]...), "magic"},
		{"bad version", append(append([]byte("PLST"), 2), good[5:]...), "version"},
		{"zero count", withCount(0), "count"},
		{"huge count", withCount(1 << 31), "count"},
		{"count too high", withCount(n + 1), "truncated"},
		{"count too low", withCount(n - 1), "trailing"},
		{"truncated entry", good[:len(good)-1], "truncated"},
		{"trailing bytes", append(bytes.Clone(good), 0), "trailing"},
		{"zero size", withSize(0), "size"},
		{"oversize", withSize(chunker.MaxChunkSize + 1), "size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, err := DecodeList(tc.data)
			if !errors.Is(err, ErrBadList) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("DecodeList = %d entries, %v; want ErrBadList saying %q", len(es), err, tc.msg)
			}
		})
	}
}

func TestEncodeListPanicsOnBadSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a zero size")
		}
	}()
	EncodeList([]Entry{{Size: 0}})
}

func FuzzDecodeList(f *testing.F) {
	for _, c := range EncodeList(testEntries(4, 100)) {
		f.Add(c.Data)
	}
	f.Add([]byte("PLST\x01\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := DecodeList(data)
		if err != nil {
			if !errors.Is(err, ErrBadList) {
				t.Fatalf("error does not wrap ErrBadList: %v", err)
			}
			return
		}
		// A list chunk that decodes is canonical: re-encoding gives it back.
		var again []byte
		for _, c := range EncodeList(es) {
			again = append(again, c.Data...)
		}
		if len(EncodeList(es)) == 1 && !bytes.Equal(again, data) {
			t.Fatalf("decoded list re-encodes differently")
		}
		if len(es) == 0 || len(es) > MaxListEntries {
			t.Fatalf("decoded %d entries", len(es))
		}
	})
}
