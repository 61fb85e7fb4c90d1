package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pitr-dev/pitr/chunker"
)

// A forward record says where the chunks of a deleted pack live now. gc
// writes one, chunks/f/<pack>, before it deletes a pack that saves it
// keeps still name (package gc, "Repacking"); a reader that finds the pack
// gone reads the record and follows it. gc rewrites a record only to point
// past a pack it has repacked since, once that pack's own record is
// written, so that chains stay short.
//
// Encoding, all integers unsigned varints:
//
//	"pitrfwd1"                         8 bytes
//	pack id                            16 bytes, the pack it forwards
//	count
//	count × (chunk id 32 bytes, target pack 16 bytes, offset, length)
//	targets
//	targets × (pack id 16 bytes, size)
//	SHA-256 of everything before it    32 bytes
//
// Entries are sorted by chunk id, each id once; a target is never the
// forwarded pack itself, and lies inside its pack, whose size the record
// gives (so that a reader can fetch a small target whole). Targets are
// sorted by id, each one an entry names, once.
type Forward struct {
	Pack    PackID
	Entries []ForwardEntry
	Sizes   map[PackID]int64 // the size of each target pack
}

// ForwardEntry is one chunk's new place.
type ForwardEntry struct {
	ID chunker.ID
	To Loc
}

// ErrBadForward: a forward record does not decode.
var ErrBadForward = errors.New("bad forward record")

const (
	forwardMagic = "pitrfwd1"
	// ForwardsPrefix is where forward records live: chunks/f/<pack>.
	ForwardsPrefix = "chunks/f/"
	// forwardEntryMin is the fewest bytes an entry takes.
	forwardEntryMin = 32 + 16 + 1 + 1
)

// ForwardKey is the store key of pack p's forward record.
func ForwardKey(p PackID) string { return ForwardsPrefix + p.String() }

// ParseForwardKey returns the pack a forward record's key names; ok is
// false for any other key.
func ParseForwardKey(key string) (p PackID, ok bool) {
	rest, found := strings.CutPrefix(key, ForwardsPrefix)
	if !found {
		return p, false
	}
	p, err := ParsePackID(rest)
	return p, err == nil
}

// Lookup returns where chunk id lives now, if the record forwards it.
func (f *Forward) Lookup(id chunker.ID) (Loc, bool) {
	i, ok := slices.BinarySearchFunc(f.Entries, id, func(e ForwardEntry, id chunker.ID) int {
		return bytes.Compare(e.ID[:], id[:])
	})
	if !ok {
		return Loc{}, false
	}
	return f.Entries[i].To, true
}

// Encode returns the record's bytes. It sorts the entries and refuses a
// record that would not decode.
func (f *Forward) Encode() ([]byte, error) {
	slices.SortFunc(f.Entries, func(a, b ForwardEntry) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("encode forward record of pack %s: %w", f.Pack, err)
	}
	b := make([]byte, 0, len(forwardMagic)+16+binary.MaxVarintLen64+len(f.Entries)*(48+2*binary.MaxVarintLen64)+sha256.Size)
	b = append(b, forwardMagic...)
	b = append(b, f.Pack[:]...)
	b = binary.AppendUvarint(b, uint64(len(f.Entries)))
	for _, e := range f.Entries {
		b = append(b, e.ID[:]...)
		b = append(b, e.To.Pack[:]...)
		b = binary.AppendUvarint(b, uint64(e.To.Offset))
		b = binary.AppendUvarint(b, uint64(e.To.Length))
	}
	targets := f.targets()
	b = binary.AppendUvarint(b, uint64(len(targets)))
	for _, p := range targets {
		b = append(b, p[:]...)
		b = binary.AppendUvarint(b, uint64(f.Sizes[p]))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...), nil
}

// targets returns the packs the entries name, sorted.
func (f *Forward) targets() []PackID {
	var ps []PackID
	for _, e := range f.Entries {
		ps = append(ps, e.To.Pack)
	}
	slices.SortFunc(ps, func(a, b PackID) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ps)
}

// check is what Encode and DecodeForward both require.
func (f *Forward) check() error {
	if f.Pack.IsZero() {
		return fmt.Errorf("%w: no pack", ErrBadForward)
	}
	for i, e := range f.Entries {
		switch {
		case i > 0 && bytes.Compare(f.Entries[i-1].ID[:], e.ID[:]) >= 0:
			return fmt.Errorf("%w: chunk %s: entries not in order or repeated", ErrBadForward, e.ID)
		case e.To.Pack.IsZero():
			return fmt.Errorf("%w: chunk %s: no target pack", ErrBadForward, e.ID)
		case e.To.Pack == f.Pack:
			return fmt.Errorf("%w: chunk %s: forwarded to its own pack", ErrBadForward, e.ID)
		case e.To.Offset < 0 || e.To.Length < 1 || e.To.Offset > MaxPackBytes || e.To.Length > MaxPackBytes:
			return fmt.Errorf("%w: chunk %s: bytes %d+%d out of range", ErrBadForward, e.ID, e.To.Offset, e.To.Length)
		}
		if err := e.To.Within(f.Sizes[e.To.Pack]); err != nil {
			return fmt.Errorf("%w: chunk %s: %w", ErrBadForward, e.ID, err)
		}
	}
	if len(f.Sizes) != len(f.targets()) {
		return fmt.Errorf("%w: sizes of %d packs for %d targets", ErrBadForward, len(f.Sizes), len(f.targets()))
	}
	return nil
}

// MaxPackBytes bounds the offsets and lengths a forward record may give.
const MaxPackBytes = 1 << 40

// DecodeForward decodes the record stored for pack want. Anything but a
// well-formed record of that pack is an error wrapping ErrBadForward.
func DecodeForward(b []byte, want PackID) (*Forward, error) {
	fail := func(format string, args ...any) (*Forward, error) {
		return nil, fmt.Errorf("decode forward record of pack %s: %w: %s", want, ErrBadForward, fmt.Sprintf(format, args...))
	}
	head := len(forwardMagic) + 16
	if len(b) < head+1+sha256.Size {
		return fail("%d bytes, too short", len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return fail("checksum mismatch")
	}
	if string(body[:len(forwardMagic)]) != forwardMagic {
		return fail("not a forward record")
	}
	f := &Forward{}
	copy(f.Pack[:], body[len(forwardMagic):head])
	if f.Pack != want {
		return fail("it forwards pack %s", f.Pack)
	}
	rest := body[head:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)/forwardEntryMin) {
		return fail("bad entry count")
	}
	rest = rest[k:]
	f.Entries = make([]ForwardEntry, n)
	for i := range f.Entries {
		e := &f.Entries[i]
		if len(rest) < 48 {
			return fail("entry %d truncated", i)
		}
		copy(e.ID[:], rest[:32])
		copy(e.To.Pack[:], rest[32:48])
		rest = rest[48:]
		off, k1 := binary.Uvarint(rest)
		if k1 <= 0 {
			return fail("entry %d: bad offset", i)
		}
		length, k2 := binary.Uvarint(rest[k1:])
		if k2 <= 0 || off > MaxPackBytes || length > MaxPackBytes {
			return fail("entry %d: bad length or offset", i)
		}
		rest = rest[k1+k2:]
		e.To.Offset, e.To.Length = int64(off), int64(length)
	}
	nt, k := binary.Uvarint(rest)
	if k <= 0 || nt > uint64(len(rest)/17) || nt > n {
		return fail("bad target count")
	}
	rest = rest[k:]
	f.Sizes = make(map[PackID]int64, nt)
	var last PackID
	for i := range nt {
		if len(rest) < 17 {
			return fail("target %d truncated", i)
		}
		var p PackID
		copy(p[:], rest[:16])
		size, k := binary.Uvarint(rest[16:])
		if k <= 0 || size > MaxPackBytes || size == 0 {
			return fail("target %d: bad size", i)
		}
		if i > 0 && bytes.Compare(last[:], p[:]) >= 0 {
			return fail("targets not in order or repeated")
		}
		last = p
		f.Sizes[p] = int64(size)
		rest = rest[16+k:]
	}
	if len(rest) != 0 {
		return fail("%d bytes after the entries", len(rest))
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("decode forward record of pack %s: %w", want, err)
	}
	return f, nil
}
