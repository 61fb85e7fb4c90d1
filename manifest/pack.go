package manifest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pitr-dev/pitr/chunker"
)

// PackID names a pack object: 16 random bytes chosen by the writer. A
// pack's name cannot be the hash of its content, because the tree nodes
// inside a pack name the pack their children are in.
type PackID [16]byte

// packsPrefix is where pack objects live: chunks/p/<32 hex digits>.
const packsPrefix = "chunks/p/"

// NewPackID returns a fresh random pack id.
func NewPackID() PackID {
	var p PackID
	_, _ = rand.Read(p[:]) // crypto/rand.Read never fails
	return p
}

// String returns the id as 32 lower-case hex digits.
func (p PackID) String() string { return hex.EncodeToString(p[:]) }

// IsZero reports whether p is the zero id (no pack).
func (p PackID) IsZero() bool { return p == PackID{} }

// MarshalText writes the id as hex, for JSON.
func (p PackID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses the hex form.
func (p *PackID) UnmarshalText(text []byte) error {
	id, err := ParsePackID(string(text))
	if err != nil {
		return err
	}
	*p = id
	return nil
}

// ParsePackID parses 32 lower-case hex digits; the zero id is refused.
func ParsePackID(s string) (PackID, error) {
	var p PackID
	if !isLowerHex(s, 2*len(p)) {
		return p, fmt.Errorf("parse pack id %q: %w: want %d lower-case hex digits", clip(s), ErrBadList, 2*len(p))
	}
	_, _ = hex.Decode(p[:], []byte(s))
	if p.IsZero() {
		return p, fmt.Errorf("parse pack id %q: %w: the zero id", s, ErrBadList)
	}
	return p, nil
}

// PackKey is the store key of pack p.
func PackKey(p PackID) string { return packsPrefix + p.String() }

// ParsePackKey returns the pack a store key names; ok is false for any
// other key.
func ParsePackKey(key string) (p PackID, ok bool) {
	rest, found := strings.CutPrefix(key, packsPrefix)
	if !found {
		return p, false
	}
	p, err := ParsePackID(rest)
	return p, err == nil
}

// Loc is where a chunk's compressed frame (chunker.Compress) is stored:
// Length bytes at Offset in pack Pack. The zero Loc means the chunk is an
// object of its own, chunks/<id>, as format 1 saves store every chunk.
// (A pack's size is in the manifest, Manifest.Packs: a tree node cannot
// know the size of the pack it is being written into.)
type Loc struct {
	Pack   PackID `json:"pack"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
}

// InPack reports whether the chunk is inside a pack.
func (l Loc) InPack() bool { return !l.Pack.IsZero() }

// Key is the store key to read for a chunk with id stored at l.
func (l Loc) Key(id chunker.ID) string {
	if l.InPack() {
		return PackKey(l.Pack)
	}
	return chunker.ObjectKey(id)
}

// String names the location for error messages.
func (l Loc) String() string {
	if !l.InPack() {
		return "own object"
	}
	return fmt.Sprintf("pack %s bytes %d+%d", l.Pack, l.Offset, l.Length)
}

// Within checks that a pack location lies inside its pack, of size bytes.
func (l Loc) Within(size int64) error {
	switch {
	case l.Pack.IsZero():
		return fmt.Errorf("no pack")
	case l.Offset < 0 || l.Length < 1 || l.Offset > size-l.Length:
		return fmt.Errorf("pack %s: bytes %d+%d outside its %d bytes", l.Pack, l.Offset, l.Length, size)
	}
	return nil
}
