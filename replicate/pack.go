package replicate

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// Pack sizing.
const (
	// DefaultPackSize caps a pack: a full save of a large graph is one PUT
	// per DefaultPackSize of compressed chunks.
	DefaultPackSize = 16 << 20
	// packUploads is how many full packs upload at once while the save
	// fills the next (memory: packUploads+1 packs).
	packUploads = 4
)

// packWriter puts the chunks a save must upload into packs: it appends
// each chunk's compressed frame to the open pack, and uploads a pack as
// soon as the next frame would take it past its cap. Locations are final
// when add returns, before the pack is uploaded; finish waits for every
// upload.
type packWriter struct {
	st    store.Store
	limit int
	g     *errgroup.Group
	ctx   context.Context

	cur  manifest.PackID
	buf  []byte
	done map[manifest.PackID]int64 // packs of this save → size

	chunks int   // frames added
	bytes  int64 // compressed bytes added
}

func newPackWriter(ctx context.Context, st store.Store, limit int) *packWriter {
	if limit <= 0 {
		limit = DefaultPackSize
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(packUploads)
	return &packWriter{st: st, limit: limit, g: g, ctx: ctx, done: map[manifest.PackID]int64{}}
}

// add compresses raw (the chunk id) into the open pack and returns where it
// will be.
func (w *packWriter) add(id chunker.ID, raw []byte) (manifest.Loc, error) {
	frame, err := chunker.Compress(raw)
	if err != nil {
		return manifest.Loc{}, fmt.Errorf("pack chunk %s: %w", id, err)
	}
	return w.addFrame(frame)
}

// addFrame appends a compressed frame to the open pack and returns where
// it will be.
func (w *packWriter) addFrame(frame []byte) (manifest.Loc, error) {
	if len(w.buf) > 0 && len(w.buf)+len(frame) > w.limit {
		if err := w.flush(); err != nil {
			return manifest.Loc{}, err
		}
	}
	if len(w.buf) == 0 {
		w.cur = manifest.NewPackID()
		w.buf = make([]byte, 0, min(w.limit, max(len(frame), 64<<10)))
	}
	loc := manifest.Loc{Pack: w.cur, Offset: int64(len(w.buf)), Length: int64(len(frame))}
	w.buf = append(w.buf, frame...)
	w.chunks++
	w.bytes += int64(len(frame))
	return loc, nil
}

// flush starts the upload of the open pack.
func (w *packWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.ctx.Err(); err != nil {
		return w.wait(err)
	}
	id, body := w.cur, w.buf
	w.done[id] = int64(len(body))
	w.buf = nil
	key := manifest.PackKey(id)
	w.g.Go(func() error {
		if err := w.st.Put(w.ctx, key, body); err != nil {
			return fmt.Errorf("upload pack %s (%d bytes): %w", key, len(body), err)
		}
		return nil
	})
	return nil
}

// wait returns the first upload error, or err.
func (w *packWriter) wait(err error) error {
	if werr := w.g.Wait(); werr != nil {
		return werr
	}
	return err
}

// finish uploads the open pack and waits for every upload. It returns the
// packs written and their sizes.
func (w *packWriter) finish() (map[manifest.PackID]int64, error) {
	if err := w.flush(); err != nil {
		return nil, err
	}
	if err := w.g.Wait(); err != nil {
		return nil, err
	}
	return w.done, nil
}

// abandon waits for uploads in flight after a failed save (their packs
// stay unreferenced; gc deletes them after its grace).
func (w *packWriter) abandon() { _ = w.g.Wait() }

// compressBatch is how much raw data a save compresses at once, in
// parallel, before appending the frames in order.
const compressBatch = 16 << 20

// compressAll compresses the chunks of plan at the indices todo, in
// batches of about compressBatch raw bytes, one goroutine per CPU, and
// calls add with each frame in order. The raw bytes of a batch are cut out
// first, in order, encoding each record once even when it spans many
// chunks (a large node's CDC pieces).
func compressAll(ctx context.Context, src chunker.RecordSource, chunks []chunker.PlannedChunk, todo []int, add func(i int, frame []byte) error) error {
	memo := &lastRecord{RecordSource: src, i: -1}
	for start := 0; start < len(todo); {
		end, size := start, 0
		for end < len(todo) && (end == start || size+chunks[todo[end]].Size <= compressBatch) {
			size += chunks[todo[end]].Size
			end++
		}
		raws := make([][]byte, end-start)
		for k := start; k < end; k++ {
			raws[k-start] = chunker.Data(memo, chunks[todo[k]])
		}
		frames := make([][]byte, end-start)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(runtime.GOMAXPROCS(0))
		for k := range raws {
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				frame, err := chunker.Compress(raws[k])
				if err != nil {
					return fmt.Errorf("pack chunk %s: %w", chunks[todo[start+k]].ID, err)
				}
				frames[k] = frame
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for k, frame := range frames {
			if err := add(todo[start+k], frame); err != nil {
				return err
			}
		}
		start = end
	}
	return nil
}

// lastRecord remembers the last record it encoded, for the chunks that
// follow one another in it.
type lastRecord struct {
	chunker.RecordSource
	i int
	b []byte
}

func (l *lastRecord) Bytes(i int) []byte {
	if i != l.i {
		l.i, l.b = i, l.RecordSource.Bytes(i)
	}
	return l.b
}
