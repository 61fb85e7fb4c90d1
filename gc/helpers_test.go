package gc_test

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

var admin = session.Actor{User: "root", Admin: true}

func newFileStore(t *testing.T) *file.Store {
	t.Helper()
	st, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// randomData returns n pseudo-random bytes from seed.
func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// putNodes puts nodes first..first+n-1 with random data of size bytes.
func putNodes(t *testing.T, s *session.Session, first, n, size int, seed uint64) {
	t.Helper()
	for i := first; i < first+n; i++ {
		id := "node-" + strconv.Itoa(i)
		if _, err := s.Put(admin, id, session.NodeInput{Type: "object", Data: randomData(size, seed+uint64(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// setMTime sets the ModTime of the object at key in a file store.
func setMTime(t *testing.T, st *file.Store, key string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(st.Root(), filepath.FromSlash(key)), mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// ageChunks sets the ModTime of every object under chunks/.
func ageChunks(t *testing.T, st *file.Store, mtime time.Time) {
	t.Helper()
	dir := filepath.Join(st.Root(), "chunks")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(path, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// putChunk stores data as a chunk and returns its key.
func putChunk(t *testing.T, st store.Store, data []byte) string {
	t.Helper()
	body, err := chunker.Compress(data)
	if err != nil {
		t.Fatal(err)
	}
	key := chunker.ObjectKey(chunker.Sum(data))
	if err := st.Put(context.Background(), key, body); err != nil {
		t.Fatal(err)
	}
	return key
}

func exists(t *testing.T, st store.Store, key string) bool {
	t.Helper()
	_, err := st.Stat(context.Background(), key)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// chunkKeys returns the keys of every chunk save m references: its list
// chunks, and the data chunks they name (if the list chunks are readable).
func chunkKeys(t *testing.T, st store.Store, m *manifest.Manifest) []string {
	t.Helper()
	var keys []string
	for p := range m.Packs {
		keys = append(keys, manifest.PackKey(p))
	}
	if m.Tree != nil {
		return keys
	}
	for _, c := range m.ChunkList.Chunks {
		keys = append(keys, chunker.ObjectKey(c.ID))
	}
	entries, err := catalog.Entries(context.Background(), st, m, nil)
	if err != nil {
		return keys // a missing list chunk: its key is in keys
	}
	for _, e := range entries {
		keys = append(keys, chunker.ObjectKey(e.ID))
	}
	return keys
}

// missingChunks returns the chunks of save m that are not in the store.
func missingChunks(t *testing.T, st store.Store, m *manifest.Manifest) []string {
	t.Helper()
	var missing []string
	seen := map[string]bool{}
	for _, k := range chunkKeys(t, st, m) {
		if !seen[k] && !exists(t, st, k) {
			missing = append(missing, k)
		}
		seen[k] = true
	}
	return missing
}

// keysOf returns the set of chunk keys of every save of session.
func keysOf(t *testing.T, st store.Store, sessionName string) map[string]bool {
	t.Helper()
	ms, err := catalog.List(context.Background(), st, sessionName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range ms {
		for _, k := range chunkKeys(t, st, m) {
			out[k] = true
		}
	}
	return out
}

// putV1Save stores g as a format 1 save (one object per chunk, a chunk
// list), as pitr versions before packs wrote them, and returns its manifest.
func putV1Save(t *testing.T, st store.Store, sessionName string, at time.Time, g *session.Graph) *manifest.Manifest {
	t.Helper()
	ctx := context.Background()
	graph, records := session.EncodeRecords(g)
	var entries []manifest.Entry
	put := func(c chunker.Chunk) {
		body, err := chunker.Compress(c.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, chunker.ObjectKey(c.ID), body); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range chunker.SplitRecords(records) {
		put(c)
		entries = append(entries, manifest.Entry{ID: c.ID, Size: int64(len(c.Data))})
	}
	at = at.UTC().Truncate(time.Millisecond)
	m := &manifest.Manifest{FormatVersion: manifest.FormatList, Session: sessionName, ID: manifest.NewID(at), Time: at,
		Reason: "api", Initialized: g.Initialized, NodeCount: len(g.Nodes), BytesTotal: int64(len(graph)),
		GraphSHA256: chunker.Sum(graph).String(), ChunkList: manifest.ChunkList{Format: manifest.ListFormat, Entries: len(entries)}}
	for _, c := range manifest.EncodeList(entries) {
		put(c)
		m.ChunkList.Chunks = append(m.ChunkList.Chunks, manifest.ListChunk{ID: c.ID, Size: int64(len(c.Data))})
	}
	m.ChunksTotal = len(entries) + len(m.ChunkList.Chunks)
	if err := catalog.Put(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	return m
}
