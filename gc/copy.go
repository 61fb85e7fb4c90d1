package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
)

// copyAll copies the chunks the plans cannot forward into new packs (each
// chunk once, however many plans hold it). The packs are taken newest
// first and each one's chunks in their order in it, so that a chunk lands
// among the others of the newest pack that held it: compaction copies a
// live chunk forward into each tier's pack, and the newest holder is the
// densest for the saves that read it. (Oldest first spread the restore of
// the middle save of 1,000 on the 20,000-node graph over 2,311 ranged
// reads; newest first, 408. BENCHMARKS.md.) It goes a pack at a time:
// read and checked against their ids, compressed again, uploaded. A plan
// with a chunk that cannot be read is marked failed: its pack stays.
func (r *repacker) copyAll(ctx context.Context, plans []*retire) ([]bool, error) {
	failed := make([]bool, len(plans))
	holders := map[chunker.ID][]int{}
	order := make([]int, len(plans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return r.ls.packs[plans[b].pack].ModTime.Compare(r.ls.packs[plans[a].pack].ModTime)
	})
	var refs []catalog.Ref
	for _, i := range order {
		for _, ref := range plans[i].rem { // in offset order (needed)
			if holders[ref.ID] == nil {
				refs = append(refs, ref)
			}
			holders[ref.ID] = append(holders[ref.ID], i)
		}
	}
	for start := 0; start < len(refs); {
		end, n := start, int64(0)
		for end < len(refs) && (end == start || n+refs[end].Loc.Length <= repackPackSize) {
			n += refs[end].Loc.Length
			end++
		}
		if err := r.copyPack(ctx, refs[start:end], holders, failed); err != nil {
			return nil, err
		}
		start = end
	}
	return failed, nil
}

// copyPack reads refs and uploads them as one new pack.
func (r *repacker) copyPack(ctx context.Context, refs []catalog.Ref, holders map[chunker.ID][]int, failed []bool) error {
	frames := make([][]byte, len(refs))
	var mu sync.Mutex
	err := catalog.ReadEachWith(ctx, r.st, refs, r.opts.Parallel, r.fw, func(k int, raw []byte, err error) error {
		if err == nil {
			frames[k], err = chunker.Compress(raw)
			return err
		}
		var ce *catalog.ChunkError
		if !errors.As(err, &ce) {
			return err
		}
		logf(r.opts.Log, "gc: warning: not repacking pack %s: %v\n", refs[k].Loc.Pack, err)
		mu.Lock()
		for _, i := range holders[refs[k].ID] {
			failed[i] = true
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("read chunks to repack: %w", err)
	}
	to := manifest.NewPackID()
	var body []byte
	locs := map[chunker.ID]manifest.Loc{}
	for k, f := range frames {
		if f != nil {
			locs[refs[k].ID] = manifest.Loc{Pack: to, Offset: int64(len(body)), Length: int64(len(f))}
			body = append(body, f...)
		}
	}
	if len(body) == 0 {
		return nil
	}
	if err := r.lease.check(ctx); err != nil {
		return err
	}
	if err := r.st.Put(ctx, manifest.PackKey(to), body); err != nil {
		return fmt.Errorf("upload pack %s (%d bytes): %w", manifest.PackKey(to), len(body), err)
	}
	r.rep.RepackPacks++
	r.rep.RepackCopied += int64(len(body))
	r.written[to] = int64(len(body))
	for id, l := range locs {
		r.copied[id] = l
	}
	return nil
}
