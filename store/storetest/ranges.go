package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

// mustGetRange checks that GetRange(key, offset, length) returns want.
func mustGetRange(t *testing.T, s store.Store, key string, offset, length int64, want []byte) {
	t.Helper()
	got, err := s.GetRange(t.Context(), key, offset, length)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, offset, length, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetRange(%q, %d, %d) = %d bytes, want %d bytes (%s)", key, offset, length, len(got), len(want), diffAt(got, want))
	}
}

// wantInvalidRange checks that GetRange(key, offset, length) fails with
// ErrInvalidRange, returns no bytes, and names the key.
func wantInvalidRange(t *testing.T, s store.Store, key string, offset, length int64) {
	t.Helper()
	got, err := s.GetRange(t.Context(), key, offset, length)
	if !errors.Is(err, store.ErrInvalidRange) {
		t.Errorf("GetRange(%q, %d, %d) = %d bytes, error %v; want ErrInvalidRange", key, offset, length, len(got), err)
		return
	}
	if got != nil {
		t.Errorf("GetRange(%q, %d, %d) returned %d bytes with its error", key, offset, length, len(got))
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("GetRange error %q does not name the key %q", err, key)
	}
	if !store.IsPermanent(err) {
		t.Errorf("GetRange error %q: IsPermanent = false", err)
	}
}

// testGetRange: ranges inside an object, up to its end, and the whole of it.
func testGetRange(t *testing.T, s store.Store) {
	const key = "ranges/object"
	const n = 1000
	b := data(11, n)
	mustPut(t, s, key, b)
	for _, r := range []struct {
		name           string
		offset, length int64
	}{
		{"middle", 100, 200},
		{"first byte", 0, 1},
		{"prefix", 0, 10},
		{"to the end", 990, 10},
		{"last byte", n - 1, 1},
		{"whole object", 0, n},
		{"all but the first byte", 1, n - 1},
	} {
		t.Run(r.name, func(t *testing.T) {
			mustGetRange(t, s, key, r.offset, r.length, b[r.offset:r.offset+r.length])
		})
	}
	// The result is the caller's: changing it changes no later read.
	got, err := s.GetRange(t.Context(), key, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	clear(got)
	mustGetRange(t, s, key, 0, n, b)
	mustGet(t, s, key, b)
}

// testGetRangeLarge: ranges of a 1 MiB object across the boundaries of
// typical transfer buffers, and after an overwrite.
func testGetRangeLarge(t *testing.T, s store.Store) {
	const key = "ranges/large"
	const n = 1 << 20
	b := data(12, n)
	mustPut(t, s, key, b)
	for _, r := range [][2]int64{{0, n}, {32<<10 - 1, 64<<10 + 2}, {n/2 + 3, 1}, {n - 100<<10, 100 << 10}, {12345, 500000}} {
		mustGetRange(t, s, key, r[0], r[1], b[r[0]:r[0]+r[1]])
	}
	// A new version of the key: ranges read it, not the old one.
	b2 := data(13, n/2)
	mustPut(t, s, key, b2)
	mustGetRange(t, s, key, 1000, 2000, b2[1000:3000])
	mustGetRange(t, s, key, 0, n/2, b2)
	wantInvalidRange(t, s, key, n/2, 1)
}

// testGetRangeBinary: every byte value comes back untransformed, also
// bytes a text or line-ending conversion would touch.
func testGetRangeBinary(t *testing.T, s store.Store) {
	const key = "ranges/binary"
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	mustPut(t, s, key, b)
	mustGetRange(t, s, key, 0, 256, b)
	for _, i := range []int64{0, '\n', '\r', 0x1a, 0x7f, 0x80, 0xef, 0xfe, 0xff} {
		mustGetRange(t, s, key, i, 1, []byte{byte(i)})
	}
	mustGetRange(t, s, key, '\r', 3, []byte("\r\x0e\x0f"))
	mustGetRange(t, s, key, 0xef, 3, []byte{0xef, 0xf0, 0xf1}) // not a BOM
	mustGetRange(t, s, key, 128, 128, b[128:])
}

// testGetRangeBeyondEnd: a range reaching past the end of the object, or
// starting at or after it, is ErrInvalidRange, never a short result.
func testGetRangeBeyondEnd(t *testing.T, s store.Store) {
	const key = "ranges/short"
	const n = 100
	b := data(14, n)
	mustPut(t, s, key, b)
	for _, r := range [][2]int64{
		{0, n + 1},             // one byte too long
		{50, 51},               // ends one byte beyond
		{90, 1000},             // length far beyond the end
		{n - 1, 2},             // the last byte and one more
		{n, 1},                 // starts at the end
		{n + 1, 1},             // starts beyond the end
		{1 << 40, 1},           // starts far beyond the end
		{0, math.MaxInt32 + 1}, // longer than an int32
	} {
		wantInvalidRange(t, s, key, r[0], r[1])
	}
	mustPut(t, s, "ranges/empty", nil)
	wantInvalidRange(t, s, "ranges/empty", 0, 1)
	wantInvalidRange(t, s, "ranges/empty", 1, 1)
	// The failed reads changed nothing.
	mustGetRange(t, s, key, 0, n, b)
}

// testGetRangeInvalid: a negative offset or a length below 1 is
// ErrInvalidRange before any request, so also for a missing key.
func testGetRangeInvalid(t *testing.T, s store.Store) {
	const key = "ranges/valid"
	mustPut(t, s, key, []byte("0123456789"))
	for _, k := range []string{key, "ranges/missing"} {
		for _, r := range [][2]int64{{-1, 1}, {-10, 5}, {math.MinInt64, 1}, {0, 0}, {5, 0}, {0, -1}, {1, math.MinInt64},
			{math.MaxInt64, 1}, {1, math.MaxInt64}} {
			wantInvalidRange(t, s, k, r[0], r[1])
		}
	}
	for _, k := range []string{"", "/abs", "a/../b", "a\x00b"} {
		if _, err := s.GetRange(t.Context(), k, 0, 1); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("GetRange(%q) error = %v, want ErrInvalidKey", k, err)
		}
	}
	mustGetRange(t, s, key, 3, 4, []byte("3456"))
}

// testGetRangeMissing: a missing key, and a prefix of other keys, is
// ErrNotFound, in an error naming the key.
func testGetRangeMissing(t *testing.T, s store.Store) {
	mustPut(t, s, "ranges/dir/object", []byte("x"))
	for _, key := range []string{"ranges/missing", "no/such/dir/key", "ranges/dir"} {
		got, err := s.GetRange(t.Context(), key, 0, 1)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRange(%q) = %d bytes, error %v; want ErrNotFound", key, len(got), err)
			continue
		}
		if errors.Is(err, store.ErrInvalidRange) {
			t.Errorf("GetRange(%q) error %q: ErrInvalidRange too", key, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", key)) {
			t.Errorf("GetRange error %q does not name the key %q", err, key)
		}
	}
}

// RangedReads checks GetRange on objects s writes itself under
// store.ChunkPrefix and beside it, so that a store configured with write
// options (encryption, a storage class for chunks) is checked reading the
// objects it wrote with them: ranges inside, up to the end and the whole of
// each object, untransformed binary bytes, and ErrInvalidRange beyond the
// end. s need not be empty; the keys are under "rangedreads/" of each.
func RangedReads(t *testing.T, s store.Store) {
	t.Helper()
	for i, key := range []string{store.ChunkPrefix + "rangedreads/ab", "rangedreads/manifest"} {
		b := data(uint64(20+i), 256<<10)
		for j := range 256 {
			b[j] = byte(j)
		}
		mustPut(t, s, key, b)
		n := int64(len(b))
		for _, r := range [][2]int64{{0, n}, {0, 256}, {7, 1000}, {n/2 - 3, 64 << 10}, {n - 1, 1}, {n - 5000, 5000}} {
			mustGetRange(t, s, key, r[0], r[1], b[r[0]:r[0]+r[1]])
		}
		wantInvalidRange(t, s, key, n-10, 11)
		wantInvalidRange(t, s, key, n, 1)
	}
}
