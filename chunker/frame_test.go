package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func testData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		if i%3 == 0 {
			b[i] = byte(rng.Uint32())
		} else {
			b[i] = byte(i / 64)
		}
	}
	return b
}

func TestCompressDecode(t *testing.T) {
	for _, n := range []int{0, 1, 100, 64 << 10, 64<<10 + 1, 300 << 10, 5 << 20} {
		raw := testData(n, uint64(n))
		body, err := Compress(raw)
		if err != nil {
			t.Fatalf("Compress(%d bytes): %v", n, err)
		}
		got, err := Decode(Sum(raw), body)
		if err != nil {
			t.Fatalf("Decode(%d bytes): %v", n, err)
		}
		if !bytes.Equal(got, raw) {
			t.Fatalf("round trip of %d bytes differs", n)
		}
		again, _ := Compress(raw)
		if !bytes.Equal(again, body) {
			t.Errorf("Compress(%d bytes) is not deterministic", n)
		}
	}
}

func TestCompressTooLarge(t *testing.T) {
	_, err := Compress(make([]byte, MaxChunkSize+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if _, err := Compress(make([]byte, MaxChunkSize)); err != nil {
		t.Fatalf("exactly MaxChunkSize: %v", err)
	}
}

// lz4Frame writes raw as an lz4 frame with the given options, bypassing
// Compress's size check.
func lz4Frame(t testing.TB, raw []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var b bytes.Buffer
	w := lz4.NewWriter(&b)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecodeBad(t *testing.T) {
	raw := testData(100_000, 7)
	id := Sum(raw)
	body, err := Compress(raw)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(body)
	flipped[len(flipped)/2] ^= 0x55
	big := make([]byte, MaxChunkSize+1) // zeros: a small frame, a huge output
	bigBody := lz4Frame(t, big)
	for _, tc := range []struct {
		name string
		id   ID
		body []byte
		want string
	}{
		{"empty", id, nil, "empty object"},
		{"garbage", id, []byte("this is not an lz4 frame at all"), "lz4"},
		{"truncated header", id, body[:5], "lz4"},
		{"truncated frame", id, body[:len(body)/2], "lz4"},
		{"missing end mark", id, body[:len(body)-4], "lz4"},
		{"flipped byte", id, flipped, ""},
		{"trailing garbage", id, append(bytes.Clone(body), "junk"...), "lz4"},
		{"wrong id", Sum([]byte("other")), body, "hash mismatch"},
		{"oversize", Sum(big), bigBody, "more than"},
		{"oversize no checksum", Sum(big), lz4Frame(t, big, lz4.ChecksumOption(false)), "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.id, tc.body)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			if !strings.Contains(err.Error(), "chunk "+tc.id.String()) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name the chunk and say %q", err, tc.want)
			}
			// DecodeInto, given the size the chunk should have, refuses the
			// same bodies (its words may differ where it stops early).
			if err := DecodeInto(tc.id, tc.body, make([]byte, len(raw))); !errors.Is(err, ErrCorrupt) ||
				!strings.Contains(err.Error(), "chunk "+tc.id.String()) {
				t.Errorf("DecodeInto: %v; want ErrCorrupt naming the chunk", err)
			}
		})
	}
}

func TestDecodeInto(t *testing.T) {
	raw := testData(100_000, 9)
	id := Sum(raw)
	body, err := Compress(raw)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, len(raw))
	if err := DecodeInto(id, body, dst); err != nil || !bytes.Equal(dst, raw) {
		t.Fatalf("DecodeInto: %v (equal %v)", err, bytes.Equal(dst, raw))
	}
	for _, size := range []int{0, len(raw) - 1, len(raw) + 1} {
		err := DecodeInto(id, body, make([]byte, size))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "chunk "+id.String()) {
			t.Errorf("DecodeInto into %d bytes of a %d-byte chunk: %v; want ErrCorrupt naming it", size, len(raw), err)
		}
	}
}

// TestLZ4CLI checks that the lz4 command reads a chunk object, when it is
// installed.
func TestLZ4CLI(t *testing.T) {
	path, err := exec.LookPath("lz4")
	if err != nil {
		t.Skip("lz4 command not installed")
	}
	raw := testData(200_000, 3)
	body, err := Compress(raw)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "-dc")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lz4 -dc: %v", err)
	}
	if !bytes.Equal(out, raw) {
		t.Fatal("lz4 -dc output differs")
	}
}

func FuzzDecode(f *testing.F) {
	for _, raw := range [][]byte{nil, []byte("x"), testData(1000, 1), testData(70_000, 2)} {
		body, err := Compress(raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, false)
		f.Add(body, true)
	}
	f.Add([]byte("garbage"), false)
	f.Fuzz(func(t *testing.T, body []byte, rightID bool) {
		id := Sum([]byte("not it"))
		if rightID {
			// The id the body would have if it decodes.
			zr := lz4.NewReader(bytes.NewReader(body))
			var out bytes.Buffer
			if _, err := out.ReadFrom(io.LimitReader(zr, MaxChunkSize+1)); err == nil && out.Len() <= MaxChunkSize {
				id = Sum(out.Bytes())
			}
		}
		data, err := Decode(id, body)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if Sum(data) != id || len(data) > MaxChunkSize {
			t.Fatalf("Decode returned data that does not hash to the id")
		}
		body2, err := Compress(data)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Decode(id, body2); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("re-encoded chunk does not decode: %v", err)
		}
		into := make([]byte, len(data))
		if err := DecodeInto(id, body, into); err != nil || !bytes.Equal(into, data) {
			t.Fatalf("DecodeInto of a body Decode accepts: %v", err)
		}
		if err := DecodeInto(id, body, make([]byte, len(data)+1)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeInto into one byte too many: %v", err)
		}
	})
}

// TestDecodeBlocks checks DecodeInto's direct path on the frames Compress
// writes (one block, several, stored blocks) and on others it reads, and
// that it gives up, for the lz4 reader to judge, on what it does not take.
func TestDecodeBlocks(t *testing.T) {
	random := make([]byte, 200_000) // incompressible: stored blocks
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, raw := range [][]byte{testData(1, 1), testData(100, 2), testData(300<<10, 3), testData(9<<20, 4), random} {
		body, err := Compress(raw)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, len(raw))
		if !decodeBlocks(body, dst) || !bytes.Equal(dst, raw) {
			t.Fatalf("decodeBlocks of Compress(%d bytes) failed", len(raw))
		}
		if err := DecodeInto(Sum(raw), body, make([]byte, len(raw))); err != nil {
			t.Fatalf("DecodeInto of %d bytes: %v", len(raw), err)
		}
		if decodeBlocks(body, make([]byte, len(raw)+1)) || (len(raw) > 1 && decodeBlocks(body, make([]byte, len(raw)-1))) {
			t.Fatalf("decodeBlocks of %d bytes into another size succeeded", len(raw))
		}
		if decodeBlocks(append(slices.Clone(body), 0), dst) {
			t.Fatalf("decodeBlocks with a trailing byte succeeded")
		}
		for cut := range min(len(body), 64) {
			if decodeBlocks(body[:cut], dst) {
				t.Fatalf("decodeBlocks of %d of %d bytes succeeded", cut, len(body))
			}
		}
	}
	raw := testData(300<<10, 5)
	for _, opts := range [][]lz4.Option{
		{lz4.BlockChecksumOption(true), lz4.ChecksumOption(true)},
		{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)},
	} {
		body := lz4Frame(t, raw, opts...)
		dst := make([]byte, len(raw))
		if !decodeBlocks(body, dst) || !bytes.Equal(dst, raw) {
			t.Fatalf("decodeBlocks of a frame with options %v failed", opts)
		}
		// No content size in these frames: a wrong size is found by the
		// blocks, into a larger buffer as into a shorter one.
		for _, n := range []int{len(raw) - 1, len(raw) + 1} {
			if decodeBlocks(body, make([]byte, n)) {
				t.Fatalf("decodeBlocks of %d bytes into %d succeeded", len(raw), n)
			}
		}
		// A block maximum of 16 KiB (not one lz4 defines) or a reserved
		// bit set in the descriptor: the lz4 reader's to judge.
		for _, bd := range []byte{0x30, body[5] | 0x80, body[5] | 0x01} {
			bad := slices.Clone(body)
			bad[5] = bd
			if decodeBlocks(bad, make([]byte, len(raw))) {
				t.Fatalf("decodeBlocks with descriptor byte %#x succeeded", bd)
			}
		}
	}
	// Two frames in one body: the lz4 reader's to read.
	two := append(lz4Frame(t, raw[:1000]), lz4Frame(t, raw[1000:2000])...)
	if decodeBlocks(two, make([]byte, 2000)) {
		t.Fatal("decodeBlocks of two frames succeeded")
	}
	if err := DecodeInto(Sum(raw[:2000]), two, make([]byte, 2000)); err != nil {
		t.Fatalf("DecodeInto of two frames: %v", err)
	}
	// Damaged data is ErrCorrupt. A damaged xxh32 checksum alone is not
	// looked at: the content hashes to its id, which is the check.
	body := lz4Frame(t, raw, lz4.ChecksumOption(true))
	bad := slices.Clone(body)
	bad[len(bad)/2] ^= 1
	if err := DecodeInto(Sum(raw), bad, make([]byte, len(raw))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeInto of a damaged frame: %v; want ErrCorrupt", err)
	}
	bad = slices.Clone(body)
	bad[len(bad)-1] ^= 1
	if err := DecodeInto(Sum(raw), bad, make([]byte, len(raw))); err != nil {
		t.Fatalf("DecodeInto of a frame with a damaged checksum but its content: %v", err)
	}
}

// FuzzDecodeBlocks: DecodeInto's direct path never panics, and whatever
// it accepts the lz4 reader decodes to the same bytes, when the reader
// accepts it too (the direct path skips the xxh32 checksums).
func FuzzDecodeBlocks(f *testing.F) {
	for _, raw := range [][]byte{[]byte("x"), testData(1000, 1), testData(70_000, 2), testData(300<<10, 3)} {
		body, err := Compress(raw)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, uint32(len(raw)))
	}
	f.Add([]byte("garbage"), uint32(7))
	f.Fuzz(func(t *testing.T, body []byte, size uint32) {
		if size > 4<<20 {
			return
		}
		// dst has room past its end, as a chunk's place in the graph
		// would without its cap: nothing may be written there.
		buf := make([]byte, int(size)+64)
		for i := range buf[size:] {
			buf[int(size)+i] = 0xA5
		}
		dst := buf[:size]
		ok := decodeBlocks(body, dst)
		for _, b := range buf[size:] {
			if b != 0xA5 {
				t.Fatalf("decodeBlocks wrote past the end of dst")
			}
		}
		if !ok {
			return
		}
		zr := lz4.NewReader(bytes.NewReader(body))
		var out bytes.Buffer
		if _, err := out.ReadFrom(io.LimitReader(zr, int64(size)+1)); err != nil {
			return // the reader refuses it (its checksums, say): the id decides
		}
		if !bytes.Equal(out.Bytes(), dst) {
			t.Fatalf("direct path decoded %d bytes, the lz4 reader %d other bytes", len(dst), out.Len())
		}
	})
}
