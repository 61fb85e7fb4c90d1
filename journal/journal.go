// Package journal is pitr's local write-ahead log: every change to the
// session (session.Op) is appended, and an edit is acknowledged only once
// the journal holding it is fsync'd. Concurrent writers share one write and
// one fsync (group commit). The journal lives in <data-dir>/journal/ as
// segment files named by their first log sequence number; once a save has
// written the graph up to a sequence number into the data dir, Release
// deletes the segments it covers. Replay reads the records after a sequence
// number back at start-up; a torn or corrupt tail (a power loss in the
// middle of a write) is detected by checksum and dropped, never applied.
//
// Record framing: uvarint length of the rest | CRC-32C (big-endian) of the
// rest | uvarint lsn | session.EncodeOp(op).
package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/pitr-dev/pitr/session"
)

// Dir is the journal's directory inside a data dir.
const Dir = "journal"

const segmentSuffix = ".log"

// Options configure a Journal.
type Options struct {
	// NoSync skips fsync (for the benchmark's baseline only: a crash may
	// then lose acknowledged edits).
	NoSync bool
}

// Journal appends changes to the current segment. Safe for concurrent use.
type Journal struct {
	dir  string
	opts Options

	mu       sync.Mutex
	cond     *sync.Cond
	f        *os.File // current segment
	first    uint64   // first lsn of the current segment
	pending  [][]byte // appended, not yet written: small bytes coalesced, large node data shared
	owned    bool     // the last pending chunk is ours to append to
	next     uint64   // lsn of the next Append
	synced   uint64   // every lsn ≤ synced is on disk
	flushing bool     // a writer is writing and syncing outside mu
	err      error    // a failed write or fsync: every later Wait fails
	// unreleased counts the bytes appended since the last Release.
	unreleased int64
}

// Open opens the journal in dataDir for appending, starting at lsn next
// (the one after the last the data dir's graph or journal holds). Older
// segments are left for Release.
func Open(dataDir string, next uint64, opts Options) (*Journal, error) {
	if next == 0 {
		next = 1
	}
	j := &Journal{dir: filepath.Join(dataDir, Dir), opts: opts, next: next, synced: next - 1}
	j.cond = sync.NewCond(&j.mu)
	if err := os.MkdirAll(j.dir, 0o755); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := j.startSegment(); err != nil {
		return nil, err
	}
	return j, nil
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segmentSuffix) }

// startSegment opens a new segment for lsn j.next on.
func (j *Journal) startSegment() error {
	f, err := os.OpenFile(filepath.Join(j.dir, segmentName(j.next)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open journal segment: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.first = f, j.next
	return nil
}

// Append records op and returns its lsn. It does not wait for the disk.
func (j *Journal) Append(op session.Op) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	lsn := j.next
	j.next++
	parts := session.OpParts(op)
	var lb [binary.MaxVarintLen64]byte
	lsnBytes := lb[:binary.PutUvarint(lb[:], lsn)]
	rest, crc := len(lsnBytes), crc32.Checksum(lsnBytes, castagnoli)
	for _, p := range parts {
		rest += len(p)
		crc = crc32.Update(crc, castagnoli, p)
	}
	head := binary.AppendUvarint(nil, uint64(rest))
	head = binary.BigEndian.AppendUint32(head, crc)
	j.add(append(head, lsnBytes...))
	for _, p := range parts {
		j.add(p)
	}
	return lsn
}

// bigPart is the size from which a part is queued as it is rather than
// copied into the pending bytes.
const bigPart = 64 << 10

// add queues b for writing.
func (j *Journal) add(b []byte) {
	j.unreleased += int64(len(b))
	switch {
	case len(b) >= bigPart:
		j.pending = append(j.pending, b)
		j.owned = false
	case j.owned:
		last := len(j.pending) - 1
		j.pending[last] = append(j.pending[last], b...)
	default:
		j.pending = append(j.pending, append(make([]byte, 0, max(4096, len(b))), b...))
		j.owned = true
	}
}

// Wait returns once every change up to lsn is written and fsync'd, or the
// journal failed. One waiter writes and syncs everything appended so far
// while the others wait for it: concurrent edits share an fsync.
func (j *Journal) Wait(ctx context.Context, lsn uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.synced < lsn && j.err == nil {
		if j.flushing {
			j.cond.Wait()
			continue
		}
		j.flushLocked()
	}
	if j.synced >= lsn {
		return nil
	}
	return j.err
}

// flushLocked writes and syncs the buffer, releasing mu meanwhile.
func (j *Journal) flushLocked() {
	chunks, upto, f := j.pending, j.next-1, j.f
	j.pending, j.owned = nil, false
	j.flushing = true
	j.mu.Unlock()
	var err error
	for _, c := range chunks {
		if _, err = f.Write(c); err != nil {
			break
		}
	}
	if err == nil && !j.opts.NoSync {
		err = f.Sync()
	}
	j.mu.Lock()
	j.flushing = false
	if err != nil {
		j.err = fmt.Errorf("write journal %s: %w", f.Name(), err)
	} else {
		j.synced = upto
	}
	j.cond.Broadcast()
}

// Err returns the failure that stopped the journal, or nil.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// Release tells the journal that the data dir's graph holds every change
// up to lsn: segments holding only such changes are deleted, and the
// current one is rotated so that it can be deleted by a later Release.
func (j *Journal) Release(lsn uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.flushing {
		j.cond.Wait()
	}
	if j.err != nil {
		return j.err
	}
	j.unreleased = 0
	if len(j.pending) > 0 {
		j.flushLocked()
		if j.err != nil {
			return j.err
		}
	}
	if j.next > j.first { // the current segment holds records: rotate
		if err := j.startSegment(); err != nil {
			return err
		}
	}
	segs, err := segments(j.dir)
	if err != nil {
		return err
	}
	for i, s := range segs {
		// A segment ends where the next begins; the current one is kept.
		if s.first == j.first || i+1 >= len(segs) || segs[i+1].first-1 > lsn {
			continue
		}
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("release journal segment: %w", err)
		}
	}
	return syncDir(j.dir)
}

// Unreleased is how many bytes were appended since the last Release: what
// a start-up would replay, and what a checkpoint of the graph would free.
func (j *Journal) Unreleased() int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.unreleased
}

// Close writes what is buffered and closes the current segment.
func (j *Journal) Close() error {
	err := j.Wait(context.Background(), j.lastAppended())
	j.mu.Lock()
	defer j.mu.Unlock()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (j *Journal) lastAppended() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1
}

type segment struct {
	path  string
	first uint64
}

// segments lists the segment files of dir by first lsn.
func segments(dir string) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list journal: %w", err)
	}
	var out []segment
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok || e.IsDir() {
			continue
		}
		first, err := strconv.ParseUint(name, 10, 64)
		if err != nil {
			continue
		}
		out = append(out, segment{path: filepath.Join(dir, e.Name()), first: first})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].first < out[b].first })
	return out, nil
}

// Remove deletes the journal of dataDir (after its changes were written
// into the graph).
func Remove(dataDir string) error {
	if err := os.RemoveAll(filepath.Join(dataDir, Dir)); err != nil {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync journal dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync journal dir: %w", err)
	}
	return nil
}
