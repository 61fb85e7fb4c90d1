// Package restore brings a save back: it chooses the save for a time, reads
// its chunk list, fetches the chunks in parallel checking every hash, checks
// the whole graph, and installs it into a data dir all at once.
package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"golang.org/x/sync/errgroup"
)

// DefaultParallel is how many chunks are fetched at once by default.
const DefaultParallel = 32

// maxGraphBytes bounds the size a manifest may claim, so that a damaged
// manifest cannot make a restore allocate without limit.
const maxGraphBytes = 64 << 30

// Choose returns the save to restore: the newest one (latest) or the newest
// taken at or before at.
func Choose(ctx context.Context, st store.Store, sessionName string, at time.Time, latest bool) (*manifest.Manifest, error) {
	if latest {
		return manifest.Newest(ctx, st, sessionName)
	}
	return manifest.At(ctx, st, sessionName, at)
}

// Entries reads the ordered data-chunk list of save m from its list chunks,
// checking each list chunk's hash.
func Entries(ctx context.Context, st store.Store, m *manifest.Manifest) ([]manifest.Entry, error) {
	lists := make([][]manifest.Entry, len(m.ChunkList.Chunks))
	err := forEach(ctx, len(lists), DefaultParallel, func(ctx context.Context, i int) error {
		ref := m.ChunkList.Chunks[i]
		raw, err := getChunk(ctx, st, ref.ID)
		if err != nil {
			return fmt.Errorf("save %s: chunk list: %w", m.ID, err)
		}
		es, err := manifest.DecodeList(raw)
		if err != nil {
			return fmt.Errorf("save %s: chunk list %s: %w", m.ID, ref.ID, err)
		}
		lists[i] = es
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []manifest.Entry
	for _, l := range lists {
		out = append(out, l...)
	}
	if len(out) != m.ChunkList.Entries {
		return nil, fmt.Errorf("save %s: chunk list has %d entries, manifest says %d: %w", m.ID, len(out), m.ChunkList.Entries, chunker.ErrCorrupt)
	}
	return out, nil
}

// Progress is told how many bytes of the graph are in, out of total. Calls
// never overlap and done only grows.
type Progress func(done, total int64)

// Fetch downloads save m and returns its encoded graph, decoded graph and
// chunk list. Every chunk is checked against its hash and the whole graph
// against the manifest's; any problem names the save and the chunk.
func Fetch(ctx context.Context, st store.Store, m *manifest.Manifest, parallel int, progress Progress) ([]byte, *session.Graph, []manifest.Entry, error) {
	entries, err := Entries(ctx, st, m)
	if err != nil {
		return nil, nil, nil, err
	}
	var total int64
	offsets := make(map[chunker.ID][]int64, len(entries))
	sizes := make(map[chunker.ID]int64, len(entries))
	order := make([]chunker.ID, 0, len(entries))
	for _, e := range entries {
		if e.Size < 0 || total+e.Size > maxGraphBytes {
			return nil, nil, nil, fmt.Errorf("save %s: chunk %s: implausible size %d: %w", m.ID, e.ID, e.Size, chunker.ErrCorrupt)
		}
		if _, ok := offsets[e.ID]; !ok {
			order = append(order, e.ID)
			sizes[e.ID] = e.Size
		}
		offsets[e.ID] = append(offsets[e.ID], total)
		total += e.Size
	}
	if total != m.BytesTotal {
		return nil, nil, nil, fmt.Errorf("save %s: chunks add up to %d bytes, manifest says %d: %w", m.ID, total, m.BytesTotal, chunker.ErrCorrupt)
	}
	graph := make([]byte, total)
	var (
		mu   sync.Mutex // serializes progress calls
		done int64
	)
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	err = forEach(ctx, len(order), parallel, func(ctx context.Context, i int) error {
		id := order[i]
		raw, err := getChunk(ctx, st, id)
		if err != nil {
			return fmt.Errorf("save %s: %w", m.ID, err)
		}
		if int64(len(raw)) != sizes[id] {
			return fmt.Errorf("save %s: chunk %s: %d bytes, chunk list says %d: %w", m.ID, id, len(raw), sizes[id], chunker.ErrCorrupt)
		}
		for _, off := range offsets[id] {
			copy(graph[off:], raw)
			mu.Lock()
			done += int64(len(raw))
			if progress != nil {
				progress(done, total)
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	sum := sha256.Sum256(graph)
	if got := hex.EncodeToString(sum[:]); got != m.GraphSHA256 {
		return nil, nil, nil, fmt.Errorf("save %s: graph hash %s, manifest says %s: %w", m.ID, got, m.GraphSHA256, chunker.ErrCorrupt)
	}
	g, err := session.Decode(graph)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("save %s: %w", m.ID, err)
	}
	return graph, g, entries, nil
}

// getChunk fetches and checks one chunk.
func getChunk(ctx context.Context, st store.Store, id chunker.ID) ([]byte, error) {
	body, err := st.Get(ctx, chunker.ObjectKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("chunk %s is missing: %w", id, err)
	}
	if err != nil {
		return nil, fmt.Errorf("get chunk %s: %w", id, err)
	}
	return chunker.Decode(id, body)
}

// ToDir restores save m into dir, replacing a session there only if force
// (one holding unsaved edits is set aside first and returned, see
// datadir.Install). On any failure dir is left as it was.
func ToDir(ctx context.Context, st store.Store, m *manifest.Manifest, dir string, force bool, storeURL string, progress Progress) (*datadir.Diverged, error) {
	if !force {
		// fail before downloading anything
		if has, err := datadir.HasSession(dir); err != nil {
			return nil, err
		} else if has {
			return nil, fmt.Errorf("%s already holds a session (use --force to replace it): %w", dir, datadir.ErrExists)
		}
	}
	// The newest committed save now: the rollback stands only while it is
	// still the newest. When it cannot be read (a damaged newest save is a
	// reason to restore an older one), the rollback stands regardless.
	newestID := ""
	newest, err := manifest.Newest(ctx, st, m.Session)
	switch {
	case err == nil:
		newestID = newest.ID
	case errors.Is(err, manifest.ErrInvalid), errors.Is(err, manifest.ErrBadList), errors.Is(err, manifest.ErrNewerFormat):
	default:
		return nil, fmt.Errorf("restore: find the newest save of session %s: %w", m.Session, err)
	}
	graph, g, _, err := Fetch(ctx, st, m, DefaultParallel, progress)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	t := m.Time
	meta := datadir.Meta{Session: m.Session, SaveID: m.ID, SaveTime: &t, Restored: true, RestoredNewest: newestID,
		StoreURL: storeURL, Initialized: g.Initialized, NodeCount: len(g.Nodes)}
	unlock, err := datadir.Lock(dir)
	if err != nil {
		return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
	}
	defer unlock()
	if force {
		// Journaled edits count as unsaved edits: fold them in, so that
		// Install sets them aside with the rest.
		if _, _, err := datadir.Checkpoint(dir); err != nil {
			return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
		}
	}
	aside, err := datadir.Install(dir, graph, meta, force)
	if err != nil {
		return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
	}
	return aside, nil
}

// forEach runs fn(i) for i in [0,n) with at most parallel at once, stopping
// at the first error.
func forEach(ctx context.Context, n, parallel int, fn func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}
