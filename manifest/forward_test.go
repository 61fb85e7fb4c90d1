package manifest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/chunker"
)

func testForward(n int) *Forward {
	f := &Forward{Pack: PackID{1, 2, 3}, Sizes: map[PackID]int64{}}
	for i := range n {
		f.Sizes[PackID{9, byte(i % 3)}] = 1 << 20
		f.Entries = append(f.Entries, ForwardEntry{
			ID: chunker.Sum([]byte{byte(i), byte(i >> 8)}),
			To: Loc{Pack: PackID{9, byte(i % 3)}, Offset: int64(i) * 1000, Length: int64(i + 1)},
		})
	}
	return f
}

func TestForwardRoundTrip(t *testing.T) {
	f := testForward(50)
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeForward(b, f.Pack)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip changed the record")
	}
	for _, e := range f.Entries {
		if loc, ok := got.Lookup(e.ID); !ok || loc != e.To {
			t.Fatalf("Lookup(%s) = %v, %v; want %v", e.ID, loc, ok, e.To)
		}
	}
	if _, ok := got.Lookup(chunker.Sum([]byte("absent"))); ok {
		t.Fatal("Lookup found a chunk the record does not hold")
	}
	if p, ok := ParseForwardKey(ForwardKey(f.Pack)); !ok || p != f.Pack {
		t.Fatalf("ParseForwardKey(ForwardKey) = %v, %v", p, ok)
	}
	for _, k := range []string{PackKey(f.Pack), "chunks/f/xyz", "chunks/f/" + strings.Repeat("0", 32)} {
		if _, ok := ParseForwardKey(k); ok {
			t.Errorf("ParseForwardKey(%q) accepted", k)
		}
	}
}

func TestForwardEncodeRefusesBadRecords(t *testing.T) {
	id := chunker.Sum([]byte("a"))
	sizes := map[PackID]int64{{1}: 10, {2}: 10, {3}: 10}
	for name, f := range map[string]*Forward{
		"no pack":        {Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Length: 1}}}, Sizes: map[PackID]int64{{2}: 10}},
		"repeated id":    {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Length: 1}}, {ID: id, To: Loc{Pack: PackID{3}, Length: 1}}}, Sizes: sizes},
		"to itself":      {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{1}, Length: 1}}}, Sizes: map[PackID]int64{{1}: 10}},
		"no target":      {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Length: 1}}}},
		"zero length":    {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}}}}, Sizes: map[PackID]int64{{2}: 10}},
		"negative":       {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Offset: -1, Length: 1}}}, Sizes: map[PackID]int64{{2}: 10}},
		"no size":        {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Length: 1}}}},
		"past its pack":  {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Offset: 5, Length: 6}}}, Sizes: map[PackID]int64{{2}: 10}},
		"size of no use": {Pack: PackID{1}, Entries: []ForwardEntry{{ID: id, To: Loc{Pack: PackID{2}, Length: 1}}}, Sizes: sizes},
	} {
		if _, err := f.Encode(); !errors.Is(err, ErrBadForward) {
			t.Errorf("%s: Encode error %v, want ErrBadForward", name, err)
		}
	}
}

// sealed recomputes the checksum, so that a test reaches the checks
// behind it.
func sealed(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(bytes.Clone(body), sum[:]...)
}

func TestDecodeForwardBadInput(t *testing.T) {
	f := testForward(3)
	good, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	body := good[:len(good)-sha256.Size]
	entry := func(i int) int { // offset of entry i in body: header, count 1 byte, entries
		off := len(forwardMagic) + 16 + 1
		for j := range i {
			e := f.Entries[j]
			off += 48 + uvarintLen(e.To.Offset) + uvarintLen(e.To.Length)
		}
		return off
	}
	// The targets table: count, then 17 bytes each (sizes 1<<20 take 3).
	setSize := func(size byte) []byte {
		c := bytes.Clone(body)
		c[entry(3)+1+16] = size
		c = append(c[:entry(3)+1+17], c[entry(3)+1+19:]...)
		return sealed(c)
	}
	set := func(at int, b ...byte) []byte {
		c := bytes.Clone(body)
		copy(c[at:], b)
		return sealed(c)
	}
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"short", good[:20], "too short"},
		{"flipped byte", append(bytes.Clone(good[:30]), append([]byte{good[30] ^ 1}, good[31:]...)...), "checksum"},
		{"bad magic", set(0, 'X'), "not a forward record"},
		{"other pack", set(len(forwardMagic), 7), "forwards pack"},
		{"count too high", set(len(forwardMagic)+16, 5), "count"},
		{"huge count", set(len(forwardMagic)+16, 0xff), "count"},
		{"count too low", set(len(forwardMagic)+16, 2), "target"},
		{"trailing", sealed(append(bytes.Clone(body), 0)), "after the entries"},
		{"no targets", sealed(append(bytes.Clone(body[:entry(3)]), 0)), "outside its 0 bytes"},
		{"zero size", setSize(0), "bad size"},
		{"targets out of order", sealed(swapTargets(body, entry(3))), "order"},
		{"out of order", set(entry(1), f.Entries[0].ID[:]...), "order"},
		{"to itself", set(entry(0)+32, f.Pack[:]...), "own pack"},
		{"no target", set(entry(0)+32, make([]byte, 16)...), "no target"},
		{"zero length", set(entry(0)+48+uvarintLen(f.Entries[0].To.Offset), 0), "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeForward(tc.data, f.Pack)
			if !errors.Is(err, ErrBadForward) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("DecodeForward = %v, %v; want ErrBadForward saying %q", got, err, tc.msg)
			}
		})
	}
}

func uvarintLen(v int64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func FuzzDecodeForward(f *testing.F) {
	for _, n := range []int{0, 1, 5} {
		b, err := testForward(n).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	want := testForward(0).Pack
	f.Fuzz(func(t *testing.T, data []byte) {
		fw, err := DecodeForward(data, want)
		if err != nil {
			if !errors.Is(err, ErrBadForward) {
				t.Fatalf("error does not wrap ErrBadForward: %v", err)
			}
			return
		}
		// What decodes encodes again and decodes to the same record.
		b, err := fw.Encode()
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		again, err := DecodeForward(b, want)
		if err != nil || !reflect.DeepEqual(again, fw) {
			t.Fatalf("re-encoded record decodes to %v, %v", again, err)
		}
	})
}

// swapTargets swaps the first two targets of the table at off.
func swapTargets(body []byte, off int) []byte {
	c := bytes.Clone(body)
	const w = 16 + 3 // a pack id and a 3-byte size
	a, b := c[off+1:off+1+w], c[off+1+w:off+1+2*w]
	t := bytes.Clone(a)
	copy(a, b)
	copy(b, t)
	return c
}
