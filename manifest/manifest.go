// Package manifest owns the per-save manifest: its versioned JSON schema;
// the format of the chunk tree a format 2 save points to (tree nodes
// stored as chunks in packs, each leaf entry naming a data chunk's pack,
// offset and length, so a save writes O(changed · log n) tree nodes); the
// chunk list of format 1 saves (still read); pack ids and locations; the
// save ids and the store key layout under sessions/<session>/saves/; and
// the parsing of `pitr restore --at` times. It is the pure format: it does
// no store access (package catalog puts, loads, lists, chooses and deletes
// saves in a store).
//
// Key layout: sessions/<session>/saves/<inv>-<id>.json, where inv is
// 999999999999999 minus the save's Unix time in milliseconds, zero-padded to
// 15 digits. An ascending listing is therefore newest first, and "the newest
// save at or before T" is one List call starting after KeyAt(session, T).
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pitr-dev/pitr/chunker"
)

// FormatVersion is the manifest format this package writes and the newest it
// reads. Format 1 (chunk_list: every chunk its own object, the whole
// graph's hash) is still read; format 2 stores chunks in packs and points
// to a chunk tree (TreeRef) instead.
const FormatVersion = 2

// FormatList is the format version of manifests with a chunk_list.
const FormatList = 1

// ListFormat names the chunk list format of ChunkList.Format.
const ListFormat = "pitr-list-1"

// Sentinel errors.
var (
	// ErrInvalid: a manifest is malformed or breaks the schema's rules.
	ErrInvalid = errors.New("invalid")
	// ErrNewerFormat: the manifest was written by a newer pitr.
	ErrNewerFormat = errors.New("written by a newer pitr")
	// ErrBadList: a list chunk does not decode.
	ErrBadList = errors.New("invalid chunk list")
	// ErrBadID: a string is not a save id.
	ErrBadID = errors.New("invalid save id")
	// ErrBadKey: a store key is not a manifest key.
	ErrBadKey = errors.New("invalid manifest key")
	// ErrBadSession: a session name breaks the naming rules.
	ErrBadSession = errors.New("invalid session name")
	// ErrBadTime: a --at time is in none of the accepted forms.
	ErrBadTime = errors.New("invalid time")
	// ErrNoSaves: the session has no saves.
	ErrNoSaves = errors.New("no saves")
	// ErrNoneBefore: the session has no save at or before the time asked.
	ErrNoneBefore = errors.New("no save at or before the time")
	// ErrNoSuchSave: the session has no committed save with the id asked.
	ErrNoSuchSave = errors.New("no such save")
)

// Manifest describes one save. Time is UTC with millisecond precision once
// stored; it always equals the time in ID.
type Manifest struct {
	FormatVersion int    `json:"format_version"`
	Session       string `json:"session"`
	ID            string `json:"id"`
	// Time is when the save's snapshot was taken.
	Time time.Time `json:"time"`
	// Reason is what triggered the save ("interval", "user_disconnect:NAME",
	// "restored:<save id>", …).
	Reason      string `json:"reason"`
	Initialized bool   `json:"initialized"`
	NodeCount   int    `json:"node_count"`
	// BytesTotal is the size of the encoded graph (raw bytes).
	BytesTotal int64 `json:"bytes_total"`
	// BytesUploaded is the compressed bytes this save put: data chunks and
	// list chunks the store did not have.
	BytesUploaded int64 `json:"bytes_uploaded"`
	// ChunksTotal is the number of chunks (data and list) the save references.
	ChunksTotal int `json:"chunks_total"`
	// ChunksUploaded counts the chunks (data and list) this save put.
	ChunksUploaded int   `json:"chunks_uploaded"`
	DurationMS     int64 `json:"duration_ms"`
	// GraphSHA256 is the hex SHA-256 of the whole encoded graph (format 1).
	GraphSHA256 string `json:"graph_sha256,omitempty"`
	// ContentSHA256 identifies the graph by its chunk list (format 2; see
	// ContentSHA256).
	ContentSHA256 string `json:"content_sha256,omitempty"`
	// PacksUploaded counts the pack objects this save put (format 2).
	PacksUploaded int    `json:"packs_uploaded,omitempty"`
	Writer        Writer `json:"writer"`
	// RestoredFrom is the save this one recommits after a rollback.
	RestoredFrom string `json:"restored_from,omitempty"`
	// ChunkList is the chunk list of a format 1 save.
	ChunkList ChunkList `json:"chunk_list"`
	// Tree is the chunk tree of a format 2 save.
	Tree *TreeRef `json:"tree,omitempty"`
	// Packs are the sizes of the packs a format 2 save references.
	Packs map[PackID]int64 `json:"packs,omitempty"`
}

// Writer identifies the server that wrote a save.
type Writer struct {
	Host string `json:"host"`
	// Generation is the writer's claim generation (0 before claims exist).
	Generation uint64 `json:"generation"`
}

// ChunkList points to the save's ordered data chunk list, stored as list
// chunks (see EncodeList) under chunker.ObjectKey like data chunks.
type ChunkList struct {
	// Format is ListFormat.
	Format string `json:"format"`
	// Entries is the number of data chunks in the list.
	Entries int `json:"entries"`
	// Chunks are the list chunks, in order.
	Chunks []ListChunk `json:"chunks"`
}

// ListChunk names one list chunk and its raw (uncompressed) size.
type ListChunk struct {
	ID   chunker.ID `json:"id"`
	Size int64      `json:"size"`
}

// wire is the stored form: field order is the JSON order, Time a string.
type wire struct {
	FormatVersion  int              `json:"format_version"`
	Session        string           `json:"session"`
	ID             string           `json:"id"`
	Time           string           `json:"time"`
	Reason         string           `json:"reason"`
	Initialized    bool             `json:"initialized"`
	NodeCount      int              `json:"node_count"`
	BytesTotal     int64            `json:"bytes_total"`
	BytesUploaded  int64            `json:"bytes_uploaded"`
	ChunksTotal    int              `json:"chunks_total"`
	ChunksUploaded int              `json:"chunks_uploaded"`
	DurationMS     int64            `json:"duration_ms"`
	GraphSHA256    string           `json:"graph_sha256,omitempty"`
	ContentSHA256  string           `json:"content_sha256,omitempty"`
	PacksUploaded  int              `json:"packs_uploaded,omitempty"`
	Writer         Writer           `json:"writer"`
	RestoredFrom   string           `json:"restored_from,omitempty"`
	ChunkList      *ChunkList       `json:"chunk_list,omitempty"`
	Tree           *TreeRef         `json:"tree,omitempty"`
	Packs          map[PackID]int64 `json:"packs,omitempty"`
}

// timeLayout is the stored form of Manifest.Time.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Encode validates m and returns it as indented JSON with a stable field
// order and a final newline. Time is written in UTC with milliseconds.
func Encode(m *Manifest) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	w := wire{
		FormatVersion: m.FormatVersion, Session: m.Session, ID: m.ID,
		Time:   m.Time.UTC().Truncate(time.Millisecond).Format(timeLayout),
		Reason: m.Reason, Initialized: m.Initialized, NodeCount: m.NodeCount,
		BytesTotal: m.BytesTotal, BytesUploaded: m.BytesUploaded,
		ChunksTotal: m.ChunksTotal, ChunksUploaded: m.ChunksUploaded,
		DurationMS: m.DurationMS, GraphSHA256: m.GraphSHA256, ContentSHA256: m.ContentSHA256,
		PacksUploaded: m.PacksUploaded, Writer: m.Writer, RestoredFrom: m.RestoredFrom, Tree: m.Tree,
		Packs: m.Packs,
	}
	if m.FormatVersion == FormatList {
		cl := m.ChunkList
		if cl.Chunks == nil {
			cl.Chunks = []ListChunk{}
		}
		w.ChunkList = &cl
	}
	// Format 2 manifests are compact JSON: a 1-node save uploads one, and
	// indentation was a quarter of its bytes. Format 1 ones (written only
	// by tests now) keep the indented form they always had; Decode reads
	// both.
	var out []byte
	var err error
	if m.FormatVersion == FormatList {
		out, err = json.MarshalIndent(w, "", "  ")
	} else {
		out, err = json.Marshal(w)
	}
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s: %w", m.ID, err)
	}
	return append(out, '\n'), nil
}

// Decode parses and validates a stored manifest. A format_version above
// FormatVersion is ErrNewerFormat; anything else wrong is ErrInvalid.
// Unknown fields are ignored, so a newer pitr may add optional fields
// without a new format version.
func Decode(data []byte) (*Manifest, error) {
	var head struct {
		FormatVersion *json.Number `json:"format_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("decode manifest: %w: %w", ErrInvalid, err)
	}
	if head.FormatVersion == nil {
		return nil, fmt.Errorf("decode manifest: %w: no format_version", ErrInvalid)
	}
	v, err := head.FormatVersion.Int64()
	switch {
	case err != nil || v < 1:
		return nil, fmt.Errorf("decode manifest: %w: format_version %s", ErrInvalid, head.FormatVersion)
	case v > FormatVersion:
		return nil, fmt.Errorf("decode manifest: format_version %d: %w (this pitr reads format %d; upgrade pitr)",
			v, ErrNewerFormat, FormatVersion)
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decode manifest: %w: %w", ErrInvalid, err)
	}
	if w.Time == "" {
		return nil, fmt.Errorf("decode manifest %s: %w: no time", w.ID, ErrInvalid)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w: time %q: %w", w.ID, ErrInvalid, w.Time, err)
	}
	m := &Manifest{
		FormatVersion: w.FormatVersion, Session: w.Session, ID: w.ID, Time: t.UTC(),
		Reason: w.Reason, Initialized: w.Initialized, NodeCount: w.NodeCount,
		BytesTotal: w.BytesTotal, BytesUploaded: w.BytesUploaded,
		ChunksTotal: w.ChunksTotal, ChunksUploaded: w.ChunksUploaded,
		DurationMS: w.DurationMS, GraphSHA256: w.GraphSHA256, ContentSHA256: w.ContentSHA256,
		PacksUploaded: w.PacksUploaded, Writer: w.Writer, RestoredFrom: w.RestoredFrom, Tree: w.Tree,
		Packs: w.Packs,
	}
	if w.ChunkList != nil {
		m.ChunkList = *w.ChunkList
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return m, nil
}

// Validate checks m against the schema: known format version, valid
// session, id and time (the time in the id, to the millisecond),
// non-negative counts, a well-formed graph hash and chunk list. Errors wrap
// ErrInvalid and name the save.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("manifest %q: %w: %s", m.ID, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if m.FormatVersion != FormatList && m.FormatVersion != FormatVersion {
		return bad("format_version %d, want %d or %d", m.FormatVersion, FormatList, FormatVersion)
	}
	if m.Session == "" {
		return bad("no session")
	}
	if err := ValidSessionName(m.Session); err != nil {
		return bad("%v", err)
	}
	if m.ID == "" {
		return bad("no id")
	}
	idTime, err := IDTime(m.ID)
	if err != nil {
		return bad("%v", err)
	}
	if m.Time.IsZero() {
		return bad("no time")
	}
	if t := m.Time.UTC().Truncate(time.Millisecond); !t.Equal(idTime) {
		return bad("time %s is not the id's time %s", t.Format(timeLayout), idTime.Format(timeLayout))
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"node_count", int64(m.NodeCount)}, {"bytes_total", m.BytesTotal},
		{"bytes_uploaded", m.BytesUploaded}, {"chunks_total", int64(m.ChunksTotal)},
		{"chunks_uploaded", int64(m.ChunksUploaded)}, {"duration_ms", m.DurationMS},
		{"chunk_list.entries", int64(m.ChunkList.Entries)}, {"packs_uploaded", int64(m.PacksUploaded)},
	} {
		if c.v < 0 {
			return bad("negative %s %d", c.name, c.v)
		}
	}
	for _, h := range []struct{ name, v string }{{"graph_sha256", m.GraphSHA256}, {"content_sha256", m.ContentSHA256}} {
		if h.v != "" && !isLowerHex(h.v, 64) {
			return bad("%s %q is not 64 lower-case hex digits", h.name, clip(h.v))
		}
	}
	if m.RestoredFrom != "" {
		if _, err := IDTime(m.RestoredFrom); err != nil {
			return bad("restored_from: %v", err)
		}
	}
	if m.FormatVersion == FormatList {
		if m.Tree != nil || m.ContentSHA256 != "" || m.Packs != nil {
			return bad("format 1 has no tree, content_sha256 or packs")
		}
		return m.ChunkList.validate(bad)
	}
	switch {
	case m.Tree == nil:
		return bad("no tree")
	case m.ContentSHA256 == "":
		return bad("no content_sha256")
	case m.ChunkList.Format != "" || m.ChunkList.Entries != 0 || len(m.ChunkList.Chunks) != 0:
		return bad("format %d has no chunk_list", m.FormatVersion)
	}
	if err := m.Tree.validate(bad); err != nil {
		return err
	}
	for p, size := range m.Packs {
		if p.IsZero() || size < 1 {
			return bad("packs: pack %s of size %d", p, size)
		}
	}
	if err := m.Tree.RootLoc.Within(m.Packs[m.Tree.RootLoc.Pack]); err != nil {
		return bad("tree.root_loc: %v", err)
	}
	return nil
}

// Chunks is the number of data chunks the save is made of.
func (m *Manifest) Chunks() int64 {
	if m.Tree != nil {
		return m.Tree.Chunks
	}
	return int64(m.ChunkList.Entries)
}

func (cl *ChunkList) validate(bad func(string, ...any) error) error {
	if cl.Format != ListFormat {
		return bad("chunk_list.format %q, want %q", clip(cl.Format), ListFormat)
	}
	n := len(cl.Chunks)
	if n > cl.Entries || cl.Entries > n*MaxListEntries {
		return bad("chunk_list: %d entries cannot be in %d list chunks", cl.Entries, n)
	}
	const head, entry = int64(listHeaderLen), int64(listEntryLen)
	for i, c := range cl.Chunks {
		if c.Size < head+entry || c.Size > head+MaxListEntries*entry || (c.Size-head)%entry != 0 {
			return bad("chunk_list.chunks[%d] %s: size %d is not a list chunk's", i, c.ID, c.Size)
		}
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// clip shortens s for an error message.
// CheckNames checks that m is the manifest of save id of session (as its
// key says); an error wraps ErrInvalid and names what m says instead.
func (m *Manifest) CheckNames(session, id string) error {
	if m.Session != session || m.ID != id {
		return fmt.Errorf("%w: it names session %q, save %q", ErrInvalid, clip(m.Session), clip(m.ID))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
