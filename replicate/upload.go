package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/store"
	"golang.org/x/sync/errgroup"
)

// uploadStats counts what one upload pass wrote.
type uploadStats struct {
	chunks int
	bytes  int64 // compressed bytes put
	// modTimes holds, for every chunk of the pass, a time its object's
	// ModTime is known to be at or after: the next save's known set.
	modTimes map[chunker.ID]time.Time
}

// uploadMissing makes sure every chunk of chunks is in the store and young
// enough for gc to leave it alone while this save is in flight, with at
// most parallel requests at once. A chunk is relied on without an upload
// only if its ModTime is at or after fresh (the save's start minus half the
// gc grace): a known chunk (of the last committed save) by the ModTime
// recorded then, any other by the ModTime a Stat returns. A missing chunk,
// or one older than fresh, is uploaded (again): a Put refreshes the
// ModTime. now is the clock read just before each Put. Chunks repeated
// within chunks are handled once. See package gc for why this is safe.
func uploadMissing(ctx context.Context, st store.Store, chunks []chunker.Chunk, known map[chunker.ID]time.Time, fresh time.Time, now func() time.Time, parallel int) (uploadStats, error) {
	todo := make([]chunker.Chunk, 0)
	modTimes := make(map[chunker.ID]time.Time, len(chunks))
	for _, c := range chunks {
		if _, ok := modTimes[c.ID]; ok {
			continue
		}
		if t, ok := known[c.ID]; ok && !t.Before(fresh) {
			modTimes[c.ID] = t
			continue
		}
		modTimes[c.ID] = time.Time{} // set below
		todo = append(todo, c)
	}
	if len(todo) == 0 {
		return uploadStats{modTimes: modTimes}, nil
	}
	var nChunks, nBytes atomic.Int64
	got := make([]time.Time, len(todo)) // one writer per index
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i, c := range todo {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			n, t, err := putUnlessFresh(ctx, st, c, fresh, now)
			if err == nil && n > 0 {
				nChunks.Add(1)
				nBytes.Add(n)
			}
			got[i] = t
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return uploadStats{}, err
	}
	for i, c := range todo {
		modTimes[c.ID] = got[i]
	}
	return uploadStats{chunks: int(nChunks.Load()), bytes: nBytes.Load(), modTimes: modTimes}, nil
}

// putUnlessFresh uploads c unless the store has it with a ModTime at or
// after fresh. It returns the bytes put and a time the object's ModTime is
// at or after: the one Stat returned, or now() read before the Put.
func putUnlessFresh(ctx context.Context, st store.Store, c chunker.Chunk, fresh time.Time, now func() time.Time) (int64, time.Time, error) {
	key := chunker.ObjectKey(c.ID)
	info, err := st.Stat(ctx, key)
	switch {
	case err == nil && !info.ModTime.Before(fresh):
		return 0, info.ModTime, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return 0, time.Time{}, fmt.Errorf("check chunk %s: %w", c.ID, err)
	}
	// missing, or too old to rely on while gc may run: (re)upload
	body, err := chunker.Compress(c.Data)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("compress chunk %s: %w", c.ID, err)
	}
	at := now()
	if err := st.Put(ctx, key, body); err != nil {
		return 0, time.Time{}, fmt.Errorf("upload chunk %s: %w", c.ID, err)
	}
	return int64(len(body)), at, nil
}
