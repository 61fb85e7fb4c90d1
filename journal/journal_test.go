package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/session"
)

func putOp(id, data string) session.Op {
	return session.Op{Kind: session.OpPut, Node: &session.Node{ID: id, Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte(data), Version: 1}}
}

// replayAll returns "id=data" of every put after lsn after.
func replayAll(t *testing.T, dir string, after uint64) ([]string, uint64, error) {
	t.Helper()
	var got []string
	last, torn, err := Replay(dir, after, func(op session.Op) error {
		got = append(got, op.Node.ID+"="+string(op.Node.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, last, torn
}

// Concurrent writers each get their change durable; replay brings every
// change back in order, and Release drops what the graph holds.
func TestAppendWaitReplayRelease(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // stands for the session's lock: appends are ordered
	for i := range 50 {
		wg.Go(func() {
			mu.Lock()
			lsn := j.Append(putOp(fmt.Sprintf("n%02d", i), "v"))
			mu.Unlock()
			if err := j.Wait(context.Background(), lsn); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, last, torn := replayAll(t, dir, 0)
	if len(got) != 50 || last != 50 || torn != nil {
		t.Fatalf("replay: %d records, last %d, torn %v; want 50, 50", len(got), last, torn)
	}
	if err := j.Release(30); err != nil {
		t.Fatal(err)
	}
	lsn := j.Append(putOp("after", "v"))
	if err := j.Wait(context.Background(), lsn); err != nil {
		t.Fatal(err)
	}
	got, last, _ = replayAll(t, dir, 30)
	if len(got) != 21 || last != 51 {
		t.Fatalf("after Release(30): %d records after 30, last %d; want 21, 51", len(got), last)
	}
	if err := j.Release(51); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := replayAll(t, dir, 0); len(got) != 0 {
		t.Fatalf("after Release of everything, replay finds %v", got)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// A tail cut at any byte, or a flipped byte, is dropped with a warning:
// the records before it are replayed, nothing after it, never an error.
func TestTornAndCorruptTails(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := j.Wait(context.Background(), j.Append(putOp(fmt.Sprint("n", i), "data"))); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	segs, _ := segments(filepath.Join(dir, Dir))
	whole, _ := os.ReadFile(segs[0].path)
	recLen := len(whole) / 3
	cases := []struct {
		name   string
		mangle func([]byte) []byte
		want   int
		torn   bool
	}{
		{"intact", func(b []byte) []byte { return b }, 3, false},
		{"last record cut short", func(b []byte) []byte { return b[:len(b)-1] }, 2, true},
		{"only a length byte of the last record", func(b []byte) []byte { return b[:2*recLen+1] }, 2, true},
		{"flipped byte in the last record", func(b []byte) []byte { b[len(b)-2] ^= 0x40; return b }, 2, true},
		{"flipped byte in the first record", func(b []byte) []byte { b[5] ^= 1; return b }, 0, true},
		{"garbage appended", func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff) }, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(segs[0].path, tc.mangle(append([]byte{}, whole...)), 0o644); err != nil {
				t.Fatal(err)
			}
			got, _, torn := replayAll(t, dir, 0)
			if len(got) != tc.want || (torn != nil) != tc.torn || (torn != nil && !errors.Is(torn, ErrTorn)) {
				t.Fatalf("replay: %d records, torn %v; want %d, torn %v", len(got), torn, tc.want, tc.torn)
			}
		})
	}
	for cut := range len(whole) {
		if err := os.WriteFile(segs[0].path, whole[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, _ := replayAll(t, dir, 0)
		if len(got) != cut/recLen {
			t.Fatalf("cut at %d: %d records, want %d", cut, len(got), cut/recLen)
		}
	}
}

// A failed write fails every waiter: nothing is acknowledged.
func TestWriteFailure(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close() // every write now fails
	if err := j.Wait(context.Background(), j.Append(putOp("n", "v"))); err == nil {
		t.Fatal("Wait after a failed write succeeded")
	}
	if err := j.Wait(context.Background(), j.Append(putOp("m", "v"))); err == nil {
		t.Fatal("a later Wait succeeded after the journal failed")
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(appendRecord(nil, 1, session.EncodeOp(putOp("n", "data"))))
	f.Add(appendRecord(nil, 7, session.EncodeOp(session.Op{Kind: session.OpDelete, ID: "x", Deps: []session.DepUpdate{{ID: "y", Version: 3}}})))
	f.Add(appendRecord(nil, 2, session.EncodeOp(session.Op{Kind: session.OpOwner, ID: "x", Owner: "ann", Version: 2})))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := decodeRecords(b, func(uint64, session.Op) error { n++; return nil })
		if err != nil && !errors.Is(err, ErrTorn) {
			t.Fatalf("decode error not wrapping ErrTorn: %v", err)
		}
	})
}

// A large node is journaled without a copy and replays whole, between
// small records.
func TestLargeRecord(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	j.Append(putOp("a", "small"))
	j.Append(putOp("big", string(big)))
	if err := j.Wait(context.Background(), j.Append(putOp("c", "small"))); err != nil {
		t.Fatal(err)
	}
	got, last, torn := replayAll(t, dir, 0)
	if len(got) != 3 || last != 3 || torn != nil || got[1] != "big="+string(big) {
		t.Fatalf("replay: %d records, last %d, torn %v", len(got), last, torn)
	}
}

// appendRecord frames one record the way Append does, in one piece (for
// seeds and corrupted copies).
func appendRecord(buf []byte, lsn uint64, payload []byte) []byte {
	var lb [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(lb[:], lsn)
	rest := len(payload) + k
	buf = binary.AppendUvarint(buf, uint64(rest))
	crc := crc32.Update(crc32.Checksum(lb[:k], castagnoli), castagnoli, payload)
	buf = binary.BigEndian.AppendUint32(buf, crc)
	buf = append(buf, lb[:k]...)
	return append(buf, payload...)
}

// What Append writes, in pieces, is byte for byte the one-piece framing.
func TestAppendMatchesFraming(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, 5, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := string(make([]byte, bigPart+1))
	ops := []session.Op{putOp("a", "x"), putOp("b", big), {Kind: session.OpOwner, ID: "a", Owner: "ann", Version: 2}}
	var want []byte
	for i, op := range ops {
		want = appendRecord(want, uint64(5+i), session.EncodeOp(op))
		j.Append(op)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := segments(filepath.Join(dir, Dir))
	got, _ := os.ReadFile(segs[0].path)
	if !bytes.Equal(got, want) {
		t.Fatalf("Append wrote %d bytes that differ from the framing (%d bytes)", len(got), len(want))
	}
}
