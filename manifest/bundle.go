package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A forward bundle holds copies of many forward records in one object,
// chunks/f/bundle/<id>, behind an index, so that a reader that needs the
// records of a dozen repacked packs reads the index and those records by
// range: two or three requests instead of a dozen. gc writes one at the
// end of a run that changed records, and then deletes the older ones. It
// is only a copy: the records stay what gc and every rule of package gc
// go by, and a reader takes a bundled copy only of a record the store
// lists as older than the bundle (a record rewritten since is read
// itself).
//
// Encoding:
//
//	"pitrfwb2"                                  8 bytes
//	count                                       4 bytes, big-endian
//	count × (pack id 16 bytes, offset 8 bytes, length 4 bytes,
//	         SHA-256 of the record 32 bytes), big-endian
//	SHA-256 of everything before it             32 bytes
//	the records (Forward.Encode), at the offsets the index gives
//
// The index is sorted by pack id, each once; offsets are from the start
// of the object, past the index, and the records follow each other in
// its order. Each record carries its own checksum; the index's copy of
// its SHA-256 lets gc tell, from the index alone, whether the bundle
// still holds every record as stored.
type BundleIndex struct {
	Entries []BundleEntry
	Size    int64 // the bytes the records end at
}

// BundleEntry is where one record lies in a bundle, and its SHA-256.
type BundleEntry struct {
	Pack   PackID
	Offset int64
	Length int64
	Sum    [sha256.Size]byte
}

// ErrBadBundle: a bundle's index does not decode.
var ErrBadBundle = errors.New("bad forward bundle")

const (
	bundleMagic = "pitrfwb2"
	// BundlesPrefix is where forward bundles live.
	BundlesPrefix = ForwardsPrefix + "bundle/"
	// bundleEntrySize is the bytes of one index entry.
	bundleEntrySize = 16 + 8 + 4 + sha256.Size
	// MaxBundleRecords bounds the records of a bundle.
	MaxBundleRecords = 1 << 20
	// maxRecordBytes bounds one bundled record.
	maxRecordBytes = 1 << 31
)

// BundleKey is the store key of a new bundle.
func BundleKey() string { return BundlesPrefix + NewPackID().String() }

// IsBundleKey reports whether key is a bundle's.
func IsBundleKey(key string) bool {
	rest, ok := strings.CutPrefix(key, BundlesPrefix)
	if !ok {
		return false
	}
	_, err := ParsePackID(rest)
	return err == nil
}

// EncodeBundle returns a bundle of the records, each already encoded
// (Forward.Encode), by pack.
func EncodeBundle(records map[PackID][]byte) ([]byte, error) {
	if len(records) > MaxBundleRecords {
		return nil, fmt.Errorf("encode forward bundle: %w: %d records", ErrBadBundle, len(records))
	}
	packs := make([]PackID, 0, len(records))
	for p := range records {
		packs = append(packs, p)
	}
	slices.SortFunc(packs, func(a, b PackID) int { return bytes.Compare(a[:], b[:]) })
	head := BundleHeaderLen(len(packs))
	b := make([]byte, 0, head)
	b = append(b, bundleMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(packs)))
	off := int64(head)
	for _, p := range packs {
		n := int64(len(records[p]))
		if p.IsZero() || n == 0 || n > maxRecordBytes {
			return nil, fmt.Errorf("encode forward bundle: %w: record of pack %s, %d bytes", ErrBadBundle, p, n)
		}
		b = append(b, p[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(off))
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		sum := sha256.Sum256(records[p])
		b = append(b, sum[:]...)
		off += n
	}
	sum := sha256.Sum256(b)
	b = append(b, sum[:]...)
	for _, p := range packs {
		b = append(b, records[p]...)
	}
	return b, nil
}

// BundleHeaderLen is the length of the index of a bundle of n records.
func BundleHeaderLen(n int) int { return len(bundleMagic) + 4 + n*bundleEntrySize + sha256.Size }

// BundleIndexLen reads, from the first 12 bytes of a bundle, how long its
// index is: a reader reads that many bytes from the start, then decodes.
func BundleIndexLen(b []byte) (int, error) {
	if len(b) < len(bundleMagic)+4 || string(b[:len(bundleMagic)]) != bundleMagic {
		return 0, fmt.Errorf("decode forward bundle: %w: not a bundle", ErrBadBundle)
	}
	n := binary.BigEndian.Uint32(b[len(bundleMagic):])
	if n > MaxBundleRecords {
		return 0, fmt.Errorf("decode forward bundle: %w: %d records", ErrBadBundle, n)
	}
	return BundleHeaderLen(int(n)), nil
}

// DecodeBundleIndex decodes the index at the start of b, a bundle of size
// bytes in all (as the store lists it). Anything but a well-formed index
// whose records lie within size is an error wrapping ErrBadBundle.
func DecodeBundleIndex(b []byte, size int64) (*BundleIndex, error) {
	fail := func(format string, args ...any) (*BundleIndex, error) {
		return nil, fmt.Errorf("decode forward bundle: %w: %s", ErrBadBundle, fmt.Sprintf(format, args...))
	}
	head, err := BundleIndexLen(b)
	if err != nil {
		return nil, err
	}
	if len(b) < head {
		return fail("index of %d bytes, %d given", head, len(b))
	}
	if int64(head) > size {
		return fail("index of %d bytes in a bundle of %d", head, size)
	}
	body, sum := b[:head-sha256.Size], b[head-sha256.Size:head]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return fail("index checksum mismatch")
	}
	n := int(binary.BigEndian.Uint32(body[len(bundleMagic):]))
	idx := &BundleIndex{Entries: make([]BundleEntry, n), Size: int64(head)}
	rest := body[len(bundleMagic)+4:]
	for i := range idx.Entries {
		e := &idx.Entries[i]
		copy(e.Pack[:], rest[:16])
		off, length := binary.BigEndian.Uint64(rest[16:24]), binary.BigEndian.Uint32(rest[24:28])
		copy(e.Sum[:], rest[28:28+sha256.Size])
		rest = rest[bundleEntrySize:]
		switch {
		case e.Pack.IsZero():
			return fail("entry %d: no pack", i)
		case i > 0 && bytes.Compare(idx.Entries[i-1].Pack[:], e.Pack[:]) >= 0:
			return fail("entry %d: packs not in order or repeated", i)
		case length == 0 || length > maxRecordBytes:
			return fail("entry %d: record of %d bytes", i, length)
		case off != uint64(idx.Size): // records follow each other
			return fail("entry %d: record at %d, want %d", i, off, idx.Size)
		case int64(off)+int64(length) > size:
			return fail("entry %d: record at %d+%d past the bundle's %d bytes", i, off, length, size)
		}
		e.Offset, e.Length = int64(off), int64(length)
		idx.Size += e.Length
	}
	return idx, nil
}

// Holds reports whether the bundle holds exactly the records given
// (encoded, by pack), each as given.
func (idx *BundleIndex) Holds(records map[PackID][]byte) bool {
	if len(idx.Entries) != len(records) {
		return false
	}
	for _, e := range idx.Entries {
		b, ok := records[e.Pack]
		if !ok || sha256.Sum256(b) != e.Sum {
			return false
		}
	}
	return true
}

// Find returns the entry of pack p's record, if the bundle holds one.
func (idx *BundleIndex) Find(p PackID) (BundleEntry, bool) {
	i, ok := slices.BinarySearchFunc(idx.Entries, p, func(e BundleEntry, p PackID) int {
		return bytes.Compare(e.Pack[:], p[:])
	})
	if !ok {
		return BundleEntry{}, false
	}
	return idx.Entries[i], true
}
