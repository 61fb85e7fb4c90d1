// Package chunker owns pitr's content addresses, chunk framing and cutting.
//
// A chunk is named by the SHA-256 of its uncompressed bytes (ID) and stored
// under "chunks/<hex id>" (ObjectKey) as one lz4 frame (Compress), so that
// `lz4 -dc` reads any chunk object. Decode is the only way back: it
// decompresses with a hard size cap and checks the hash, so a chunk that is
// not what its name says is never used.
//
// Cutting turns a save's encoded graph into chunks whose concatenation is the
// stream. SplitRecords, which pitr uses, cuts at record (node) boundaries:
// small records are grouped content-defined, large ones stand alone, and
// records above a size cap are cut inside by Rabin content-defined chunking
// (github.com/restic/chunker with a fixed polynomial, so cuts are the same on
// every host). A Planner cuts records into the same chunks as SplitRecords,
// but from one save to the next reads and hashes only the records that
// changed (and their groups). SplitStream is generic CDC over the whole
// stream, kept for comparison; CUTTING.md has the measurements that chose
// between them.
package chunker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Sentinel errors.
var (
	// ErrCorrupt: a chunk body does not decode, is too large, or does not
	// hash to its id.
	ErrCorrupt = errors.New("corrupt")
	// ErrTooLarge: Compress was given more than MaxChunkSize bytes.
	ErrTooLarge = errors.New("chunk too large")
	// ErrBadID: a string is not a chunk id (64 lower-case hex digits).
	ErrBadID = errors.New("invalid chunk id")
)

// ID is a chunk's content address: the SHA-256 of its uncompressed bytes.
type ID [32]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the id as 64 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (no chunk has it in practice).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the id as lower-case hex, so it is a JSON string.
func (id ID) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, id[:]), nil
}

// UnmarshalText parses lower-case hex, as ParseID.
func (id *ID) UnmarshalText(text []byte) error {
	v, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses 64 lower-case hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("parse chunk id %q: %w: want 64 hex digits, got %d characters", clip(s), ErrBadID, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ID{}, fmt.Errorf("parse chunk id %q: %w: want lower-case hex", clip(s), ErrBadID)
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("parse chunk id %q: %w: %w", clip(s), ErrBadID, err)
	}
	return id, nil
}

// ObjectKey is the store key of the chunk with this id: "chunks/<hex>".
func ObjectKey(id ID) string { return "chunks/" + id.String() }

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
