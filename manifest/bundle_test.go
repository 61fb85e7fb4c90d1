package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
)

// sampleRecords returns n encoded forward records, by pack.
func sampleRecords(t testing.TB, n int) map[PackID][]byte {
	t.Helper()
	out := map[PackID][]byte{}
	for i := range n {
		to := NewPackID()
		f := &Forward{Pack: NewPackID(), Sizes: map[PackID]int64{to: 1 << 20}}
		for j := range i + 1 {
			f.Entries = append(f.Entries, ForwardEntry{ID: chunker.Sum([]byte{byte(i), byte(j)}), To: Loc{Pack: to, Offset: int64(100 * j), Length: 100}})
		}
		b, err := f.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Pack] = b
	}
	return out
}

func TestBundleRoundTrip(t *testing.T) {
	recs := sampleRecords(t, 50)
	b, err := EncodeBundle(recs)
	if err != nil {
		t.Fatal(err)
	}
	head, err := BundleIndexLen(b[:12])
	if err != nil || head != BundleHeaderLen(50) {
		t.Fatalf("index length %d %v", head, err)
	}
	idx, err := DecodeBundleIndex(b[:head], int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Entries) != 50 || idx.Size != int64(len(b)) {
		t.Fatalf("%d entries ending at %d, want 50 ending at %d", len(idx.Entries), idx.Size, len(b))
	}
	for p, rec := range recs {
		e, ok := idx.Find(p)
		if !ok || !bytes.Equal(b[e.Offset:e.Offset+e.Length], rec) {
			t.Fatalf("record of pack %s not found as written", p)
		}
		if _, err := DecodeForward(b[e.Offset:e.Offset+e.Length], p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := idx.Find(NewPackID()); ok {
		t.Fatal("found a pack the bundle does not hold")
	}
	if !idx.Holds(recs) {
		t.Fatal("the bundle does not hold the records it was made of")
	}
	for p := range recs {
		other := maps.Clone(recs)
		delete(other, p)
		if idx.Holds(other) {
			t.Fatal("Holds without one of its records")
		}
		other = maps.Clone(recs)
		other[p] = append(slices.Clone(recs[p][:len(recs[p])-1]), recs[p][len(recs[p])-1]^1)
		if idx.Holds(other) {
			t.Fatal("Holds with a record changed")
		}
		break
	}
	if !IsBundleKey(BundleKey()) || IsBundleKey(ForwardKey(NewPackID())) || IsBundleKey(BundlesPrefix+"x") {
		t.Fatal("IsBundleKey")
	}
	if _, ok := ParseForwardKey(BundleKey()); ok {
		t.Fatal("a bundle's key parses as a record's")
	}
}

func TestBundleIndexBad(t *testing.T) {
	b, err := EncodeBundle(sampleRecords(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	head := BundleHeaderLen(3)
	resum := func(x []byte) []byte { // a valid checksum over a damaged index
		x = slices.Clone(x)
		sum := sha256Sum(x[:head-32])
		copy(x[head-32:head], sum[:])
		return x
	}
	entry := func(i int) int { return 12 + i*bundleEntrySize }
	for _, tc := range []struct {
		name string
		b    []byte
		size int64
	}{
		{"empty", nil, 0},
		{"not a bundle", append([]byte("pitrfwd1"), b[8:]...), int64(len(b))},
		{"too many records", func() []byte { x := slices.Clone(b); binary.BigEndian.PutUint32(x[8:], MaxBundleRecords+1); return x }(), int64(len(b))},
		{"index cut short", b[:head-1], int64(len(b))},
		{"index longer than the bundle", b[:head], int64(head - 1)},
		{"checksum mismatch", func() []byte { x := slices.Clone(b); x[entry(0)+20] ^= 1; return x }(), int64(len(b))},
		{"zero pack", resum(func() []byte { x := slices.Clone(b); clear(x[entry(0) : entry(0)+16]); return x }()), int64(len(b))},
		{"packs out of order", resum(func() []byte {
			x := slices.Clone(b)
			copy(x[entry(1):entry(1)+16], x[entry(0):entry(0)+16])
			return x
		}()), int64(len(b))},
		{"empty record", resum(func() []byte { x := slices.Clone(b); binary.BigEndian.PutUint32(x[entry(0)+24:], 0); return x }()), int64(len(b))},
		{"records overlap", resum(func() []byte {
			x := slices.Clone(b)
			binary.BigEndian.PutUint64(x[entry(1)+16:], uint64(head))
			return x
		}()), int64(len(b))},
		{"record past the end", b[:head], int64(len(b) - 1)},
	} {
		_, err := DecodeBundleIndex(tc.b, tc.size)
		if !errors.Is(err, ErrBadBundle) {
			t.Errorf("%s: %v, want ErrBadBundle", tc.name, err)
		}
	}
}

func FuzzDecodeBundleIndex(f *testing.F) {
	b, err := EncodeBundle(sampleRecords(f, 4))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, int64(len(b)))
	f.Add(b[:BundleHeaderLen(4)], int64(len(b)))
	f.Add([]byte("pitrfwb2\x00\x00\x00\x00"), int64(44))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		idx, err := DecodeBundleIndex(b, size)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error does not wrap ErrBadBundle: %v", err)
			}
			return
		}
		if idx.Size > size || idx.Size < int64(BundleHeaderLen(len(idx.Entries))) {
			t.Fatalf("records end at %d in a bundle of %d", idx.Size, size)
		}
		for i, e := range idx.Entries {
			if e.Length < 1 || e.Offset+e.Length > size || (i > 0 && bytes.Compare(idx.Entries[i-1].Pack[:], e.Pack[:]) >= 0) {
				t.Fatalf("entry %d: %+v", i, e)
			}
		}
	})
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// FuzzDecodeBundleIndexBody fuzzes the index behind a valid checksum, so
// that the entries' checks are reached.
func FuzzDecodeBundleIndexBody(f *testing.F) {
	b, err := EncodeBundle(sampleRecords(f, 4))
	if err != nil {
		f.Fatal(err)
	}
	head := BundleHeaderLen(4)
	f.Add(b[12:head-32], int64(len(b)))
	f.Fuzz(func(t *testing.T, entries []byte, size int64) {
		n := len(entries) / bundleEntrySize
		x := binary.BigEndian.AppendUint32([]byte(bundleMagic), uint32(n))
		x = append(x, entries[:n*bundleEntrySize]...)
		sum := sha256.Sum256(x)
		x = append(x, sum[:]...)
		idx, err := DecodeBundleIndex(x, size)
		if err != nil {
			if !errors.Is(err, ErrBadBundle) {
				t.Fatalf("error does not wrap ErrBadBundle: %v", err)
			}
			return
		}
		end := int64(len(x))
		for i, e := range idx.Entries {
			if e.Offset != end || e.Length < 1 || e.Offset+e.Length > size || (i > 0 && bytes.Compare(idx.Entries[i-1].Pack[:], e.Pack[:]) >= 0) {
				t.Fatalf("entry %d: %+v", i, e)
			}
			end += e.Length
		}
		if idx.Size != end {
			t.Fatalf("records end at %d, the index says %d", end, idx.Size)
		}
	})
}
