package manifest

import (
	"encoding/binary"
	"fmt"

	"github.com/pitr-dev/pitr/chunker"
)

// MaxListEntries is the most entries one list chunk holds.
const MaxListEntries = 256

// Entry is one data chunk of a save: its id and raw (uncompressed) size,
// and, for a format 2 save, where it is stored and which node record
// starts in it (see TreeNode).
type Entry struct {
	ID   chunker.ID `json:"id"`
	Size int64      `json:"size"`
	// Loc is where the chunk is stored; zero in format 1 (an own object).
	Loc Loc `json:"loc,omitzero"`
	// Key is the id of the first node whose record starts in the chunk
	// ("" if none does: a piece of a large record, or only the header or
	// trailer). A chunk with a Key starts at a record boundary.
	Key string `json:"key,omitempty"`
	// Start is the offset in the chunk's raw bytes where Key's record
	// starts (0 when it is the chunk's first record).
	Start int64 `json:"start,omitempty"`
}

// List chunk format "pitr-list-1", all integers big-endian:
//
//	magic "PLST" | version 1 (1 byte) | count (uint32, 1..MaxListEntries)
//	count × ( chunk id (32 bytes) | raw size (uint32, 1..chunker.MaxChunkSize) )
const (
	listMagic     = "PLST"
	listVersion   = 1
	listHeaderLen = len(listMagic) + 1 + 4
	listEntryLen  = len(chunker.ID{}) + 4
	// listEvery: a list chunk ends after an entry whose id, read as a
	// big-endian integer from its last 8 bytes, is 0 modulo listEvery, so
	// list chunks hold about listEvery entries. (The last bytes, because
	// SplitRecords' grouping condition looks at the first ones.)
	listEvery = 32
)

// EncodeList cuts a save's ordered chunk list into list chunks. Boundaries
// are content-defined: a list chunk ends after an entry whose id meets a
// condition (about 32 entries per list chunk) or at MaxListEntries entries,
// so a save whose data chunks mostly repeat the previous save's also
// repeats most of its list chunks. No entries give no list chunks.
//
// Every Size must be in 1..chunker.MaxChunkSize, as for any chunk the
// cutters make; EncodeList panics otherwise.
func EncodeList(entries []Entry) []chunker.Chunk {
	var out []chunker.Chunk
	for start := 0; start < len(entries); {
		end := start
		for end < len(entries) {
			e := entries[end]
			end++
			if end-start == MaxListEntries || binary.BigEndian.Uint64(e.ID[24:])%listEvery == 0 {
				break
			}
		}
		out = append(out, encodeListChunk(entries[start:end]))
		start = end
	}
	return out
}

func encodeListChunk(entries []Entry) chunker.Chunk {
	b := make([]byte, 0, listHeaderLen+len(entries)*listEntryLen)
	b = append(b, listMagic...)
	b = append(b, listVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		if e.Size < 1 || e.Size > chunker.MaxChunkSize {
			panic(fmt.Sprintf("manifest: encode chunk list: chunk %s has size %d", e.ID, e.Size))
		}
		b = append(b, e.ID[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(e.Size))
	}
	return chunker.Chunk{ID: chunker.Sum(b), Data: b}
}

// DecodeList parses one list chunk (its raw bytes). It is strict: a short or
// long chunk, a wrong magic or version, a count out of range or not matching
// the length, or a size out of range is an error wrapping ErrBadList.
func DecodeList(chunk []byte) ([]Entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("decode chunk list: %w: %s", ErrBadList, fmt.Sprintf(format, args...))
	}
	if len(chunk) < listHeaderLen {
		return nil, bad("truncated: %d bytes, header is %d", len(chunk), listHeaderLen)
	}
	if string(chunk[:len(listMagic)]) != listMagic {
		return nil, bad("bad magic %q", chunk[:len(listMagic)])
	}
	if v := chunk[len(listMagic)]; v != listVersion {
		return nil, bad("version %d, want %d", v, listVersion)
	}
	count := int(binary.BigEndian.Uint32(chunk[len(listMagic)+1:]))
	if count < 1 || count > MaxListEntries {
		return nil, bad("count %d out of range 1..%d", count, MaxListEntries)
	}
	body := chunk[listHeaderLen:]
	switch want := count * listEntryLen; {
	case len(body) < want:
		return nil, bad("truncated: %d entries need %d bytes, have %d", count, want, len(body))
	case len(body) > want:
		return nil, bad("%d trailing bytes after %d entries", len(body)-want, count)
	}
	out := make([]Entry, count)
	for i := range out {
		e := body[i*listEntryLen:]
		copy(out[i].ID[:], e[:len(chunker.ID{})])
		size := binary.BigEndian.Uint32(e[len(chunker.ID{}):])
		if size < 1 || size > chunker.MaxChunkSize {
			return nil, bad("entry %d (%s): size %d out of range 1..%d", i, out[i].ID, size, chunker.MaxChunkSize)
		}
		out[i].Size = int64(size)
	}
	return out, nil
}
