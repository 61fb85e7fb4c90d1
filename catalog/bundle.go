package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// bundleHead is how much of a bundle is read first, for its index: the
// index of about 1,000 records. A bundle of at most WholeBundle bytes is read
// whole instead, at its first use: one request for every record it holds
// (1,000 saves of 2,000 nodes: about 7 MB).
const (
	bundleHead  = 64 << 10
	WholeBundle = 8 << 20
)

// fromBundle reads, from the newest bundle listed, the copies of the
// records of packs that the listing shows unchanged since the bundle was
// written (older than it), and keeps those that decode. Anything else
// (no bundle, a bundle gone or damaged, a copy that does not decode) is
// left to the records themselves.
func (fs *Forwards) fromBundle(ctx context.Context, st store.Store, packs []manifest.PackID, parallel int) {
	fs.mu.Lock()
	b, ro := fs.bundle, fs.recordsOnly
	var want []manifest.PackID
	for _, p := range packs {
		if t, ok := fs.times[p]; ok && t.Before(b.ModTime) {
			want = append(want, p)
		}
	}
	fs.mu.Unlock()
	if ro || b.Key == "" || len(want) < 2 && fs.bundleHeld() == 0 {
		return // one record costs one GET of its own: less than the bundle
	}
	idx, whole := fs.bundleIndex(ctx, st, b)
	if idx == nil {
		return
	}
	if whole != nil {
		for _, p := range want {
			if e, ok := idx.Find(p); ok {
				if f, err := manifest.DecodeForward(whole[e.Offset:e.Offset+e.Length], p); err == nil {
					fs.setIfUnread(f)
				}
			}
		}
		return
	}
	var es []manifest.BundleEntry
	for _, p := range want {
		if e, ok := idx.Find(p); ok {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b manifest.BundleEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	// One ranged read per run of records close together, as for chunks.
	var reads [][]manifest.BundleEntry
	for i, e := range es {
		if i > 0 {
			cur := reads[len(reads)-1]
			first, last := cur[0], cur[len(cur)-1]
			if e.Offset-(last.Offset+last.Length) <= MaxGap && e.Offset+e.Length-first.Offset <= MaxRead {
				reads[len(reads)-1] = append(cur, e)
				continue
			}
		}
		reads = append(reads, []manifest.BundleEntry{e})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, parallel))
	for _, rd := range reads {
		g.Go(func() error {
			off := rd[0].Offset
			body, err := st.GetRange(gctx, b.Key, off, rd[len(rd)-1].Offset+rd[len(rd)-1].Length-off)
			if err != nil {
				return nil // left to the records
			}
			for _, e := range rd {
				if e.Offset-off+e.Length > int64(len(body)) {
					return nil
				}
				f, err := manifest.DecodeForward(body[e.Offset-off:e.Offset-off+e.Length], e.Pack)
				if err == nil {
					fs.setIfUnread(f)
				}
			}
			return nil
		})
	}
	_ = g.Wait()
}

// bundleIndex returns the index of bundle b, reading it the first time,
// and the whole bundle if it was small enough to read whole; nil if it
// cannot be had (then no other read asks again).
func (fs *Forwards) bundleIndex(ctx context.Context, st store.Store, b store.ObjectInfo) (*manifest.BundleIndex, []byte) {
	fs.bundleMu.Lock()
	defer fs.bundleMu.Unlock()
	if fs.bundleIdx != nil || fs.bundleFailed {
		return fs.bundleIdx, fs.bundleAll
	}
	idx, all, err := ReadBundleIndex(ctx, st, b, b.Size <= WholeBundle)
	if err != nil {
		fs.bundleFailed = ctx.Err() == nil // a reader that gave up leaves it to the next
		return nil, nil
	}
	fs.bundleIdx, fs.bundleAll = idx, all
	return idx, all
}

// ReadBundleIndex reads the index of forward bundle b (as listed, with
// its size): its first bytes (64 KiB, and the rest of the index if
// longer), or, if whole, the whole bundle, which it returns too.
func ReadBundleIndex(ctx context.Context, st store.Store, b store.ObjectInfo, whole bool) (*manifest.BundleIndex, []byte, error) {
	var head []byte
	var err error
	if whole {
		head, err = st.Get(ctx, b.Key)
	} else {
		head, err = st.GetRange(ctx, b.Key, 0, min(bundleHead, b.Size))
	}
	var n int
	if err == nil {
		n, err = manifest.BundleIndexLen(head)
	}
	if err == nil && n > len(head) {
		head, err = st.GetRange(ctx, b.Key, 0, int64(n))
	}
	var idx *manifest.BundleIndex
	if err == nil {
		idx, err = manifest.DecodeBundleIndex(head, b.Size)
	}
	if err == nil && whole && idx.Size != int64(len(head)) {
		err = fmt.Errorf("%w: %d bytes, the index says %d", manifest.ErrBadBundle, len(head), idx.Size)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read forward bundle %s: %w", b.Key, err)
	}
	if !whole {
		head = nil
	}
	return idx, head, nil
}

// records returns the forward records fs reads through the records
// themselves: fs if it never takes a bundle's copies, else one set, made
// the first time, shared by every read that fs's copies failed.
func (fs *Forwards) records() *Forwards {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.recordsOnly {
		return fs
	}
	if fs.twin == nil {
		fs.twin = NewForwards()
		fs.twin.recordsOnly = true
	}
	return fs.twin
}

// bundleHeld returns the bytes of the bundle kept whole.
func (fs *Forwards) bundleHeld() int64 {
	fs.bundleMu.Lock()
	defer fs.bundleMu.Unlock()
	return int64(len(fs.bundleAll))
}

// setIfUnread keeps f as its pack's record unless one is read or being
// read.
func (fs *Forwards) setIfUnread(f *manifest.Forward) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m[f.Pack] == nil {
		s := &forwardSlot{done: make(chan struct{}), f: f}
		close(s.done)
		fs.m[f.Pack] = s
	}
}
