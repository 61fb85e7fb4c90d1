package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/store"
	"golang.org/x/sync/errgroup"
)

// uploadStats counts what one upload pass wrote.
type uploadStats struct {
	chunks int
	bytes  int64 // compressed bytes put
}

// uploadMissing stores every chunk of chunks that is neither in known nor
// already in the store, with at most parallel requests at once. A chunk in
// known is one the last committed save references, so it is in the store.
// Chunks repeated within chunks are handled once.
func uploadMissing(ctx context.Context, st store.Store, chunks []chunker.Chunk, known map[chunker.ID]struct{}, parallel int) (uploadStats, error) {
	todo := make([]chunker.Chunk, 0)
	seen := make(map[chunker.ID]struct{}, len(chunks))
	for _, c := range chunks {
		if _, ok := known[c.ID]; ok {
			continue
		}
		if _, ok := seen[c.ID]; ok {
			continue
		}
		seen[c.ID] = struct{}{}
		todo = append(todo, c)
	}
	if len(todo) == 0 {
		return uploadStats{}, nil
	}
	var nChunks, nBytes atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, c := range todo {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			n, err := putIfMissing(ctx, st, c)
			if err == nil && n > 0 {
				nChunks.Add(1)
				nBytes.Add(n)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return uploadStats{}, err
	}
	return uploadStats{chunks: int(nChunks.Load()), bytes: nBytes.Load()}, nil
}

// putIfMissing uploads c unless the store has it, returning the bytes put.
func putIfMissing(ctx context.Context, st store.Store, c chunker.Chunk) (int64, error) {
	key := chunker.ObjectKey(c.ID)
	_, err := st.Stat(ctx, key)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("check chunk %s: %w", c.ID, err)
	}
	body, err := chunker.Compress(c.Data)
	if err != nil {
		return 0, fmt.Errorf("compress chunk %s: %w", c.ID, err)
	}
	if err := st.Put(ctx, key, body); err != nil {
		return 0, fmt.Errorf("upload chunk %s: %w", c.ID, err)
	}
	return int64(len(body)), nil
}
