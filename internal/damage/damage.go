// Package damage breaks stored chunks on purpose, for tests of the code
// that must notice: restore, verify, gc. A chunk is damaged where it is,
// in its own object (format 1) or in its pack (format 2).
package damage

import (
	"bytes"
	"context"
	"fmt"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// How a chunk is damaged.
const (
	// Flip changes one byte in the middle of the chunk's stored frame.
	Flip = "flip"
	// Garbage overwrites the whole frame with bytes that are not lz4.
	Garbage = "garbage"
	// Delete removes the object holding the chunk: for a packed chunk, the
	// whole pack, so every chunk in it goes missing.
	Delete = "delete"
)

// Chunk damages the stored form of chunk e, as how says, and returns the
// key of the object it changed.
func Chunk(ctx context.Context, st store.Store, e manifest.Entry, how string) (string, error) {
	key := e.Loc.Key(e.ID)
	if how == Delete {
		return key, st.Delete(ctx, key)
	}
	body, err := st.Get(ctx, key)
	if err != nil {
		return key, fmt.Errorf("damage %s: %w", key, err)
	}
	start, length := int64(0), int64(len(body))
	if e.Loc.InPack() {
		start, length = e.Loc.Offset, e.Loc.Length
	}
	frame := body[start : start+length]
	switch how {
	case Flip:
		frame[len(frame)/2] ^= 0xff
	case Garbage:
		copy(frame, bytes.Repeat([]byte("x"), len(frame)))
	default:
		return key, fmt.Errorf("damage: unknown kind %q", how)
	}
	return key, st.Put(ctx, key, body)
}
