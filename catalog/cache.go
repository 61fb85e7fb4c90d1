package catalog

import (
	"context"
	"errors"
	"sync"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"golang.org/x/sync/errgroup"
)

// Reading a save's tree costs one round of reads per level; spans makes
// most of those rounds free. A save writes its new tree nodes at the end of
// its pack, children before parents, so reading a node's pack backwards
// from the node (TreeWindow bytes) brings its children along; and a small
// pack (at most WholePack bytes) is read whole at its first use, which
// brings its data chunks along too.
//
// A save whose packs total at most WholeSave bytes is read whole before
// its tree is walked (see prefetch): one GET per pack, all at once, and
// no further round trip. Compaction keeps every pack a save references at
// least half used by it, so this reads at most twice the save's bytes.
//
// After gc repacked a small save's packs, what their records forward is
// read the same way, a span per pack it went to, a round per record
// followed, as long as everything read beforehand then holds at most
// WholeForwarded bytes (the most a restore keeps besides the graph). The
// spans hold what other saves need from those packs too: read at once,
// they cost more bytes than the reads of the chunks the tree names, and
// far fewer requests. (The middle save of 1,000 on the 2,000-node graph,
// after gc: 15 requests and 63 MB with 64 MiB, 36 requests and 45 MB when
// forwarded spans had a budget of 32 MiB of their own.)
const (
	TreeWindow     = 1 << 20
	WholePack      = 2 << 20
	WholeSave      = 32 << 20
	WholeForwarded = 64 << 20
)

// spans keeps the byte ranges of packs read during one read of a save.
// Safe for concurrent use.
type spans struct {
	mu  sync.Mutex
	m   map[manifest.PackID][]span
	fwd *Forwards // the forward records met during the read
}

type span struct {
	off int64
	b   []byte
}

func newSpans() *spans { return &spans{m: map[manifest.PackID][]span{}, fwd: NewForwards()} }

// get returns the frame at l if a kept range holds it.
func (c *spans) get(l manifest.Loc) []byte {
	if c == nil || !l.InPack() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.m[l.Pack] {
		if l.Offset >= s.off && l.Offset+l.Length <= s.off+int64(len(s.b)) {
			return s.b[l.Offset-s.off : l.Offset-s.off+l.Length]
		}
	}
	return nil
}

// held returns the bytes kept.
func (c *spans) held() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, ss := range c.m {
		for _, s := range ss {
			n += int64(len(s.b))
		}
	}
	return n
}

// put keeps b, the bytes of pack p from off.
func (c *spans) put(p manifest.PackID, off int64, b []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[p] = append(c.m[p], span{off, b})
}

// prefetch reads every pack of save m whole into c, parallel at a time,
// when they total at most WholeSave bytes; otherwise it reads nothing.
// It is only a shortcut: a pack that cannot be read, or has another size
// than the manifest says, is left out, and the reads that need it then
// fail with the error that names their chunk. For a pack that is gone
// (or that c's listing of chunks/f/, if taken, says was repacked), its
// forward record is read instead, and in a next round, from each pack
// the records forward to, the span that holds what they forward, if
// what is read then totals at most WholeForwarded (an older save, after
// gc repacked its packs).
func prefetch(ctx context.Context, st store.Store, m *manifest.Manifest, parallel int, c *spans) {
	if m.Tree == nil || len(m.Packs) == 0 {
		return
	}
	var total int64
	round := make(map[manifest.PackID]extent, len(m.Packs))
	for p, size := range m.Packs {
		total += size
		round[p] = extent{0, size, true}
	}
	if total > WholeSave {
		return
	}
	read := map[manifest.PackID]bool{}
	for range MaxForwards {
		// The records of the packs listed as repacked that the bundle
		// holds, at once (the others are read in the round).
		listed := make([]manifest.PackID, 0, len(round))
		for p := range round {
			listed = append(listed, p)
		}
		c.fwd.fromBundle(ctx, st, c.fwd.unread(listed), parallel)
		gone := prefetchRound(ctx, st, round, parallel, c)
		for p := range round {
			read[p] = true
		}
		next := map[manifest.PackID]extent{}
		for _, p := range gone {
			f := c.fwd.known(p)
			if f == nil {
				continue
			}
			for _, e := range f.Entries {
				if t := e.To.Pack; !read[t] {
					next[t] = next[t].cover(e.To)
				}
			}
		}
		var more int64 // what is held, and what the next round would add
		for _, x := range next {
			more += x.length
		}
		if len(next) == 0 || c.held()+c.fwd.bundleHeld()+more > WholeForwarded {
			return
		}
		round = next
	}
}

// extent is a byte range of a pack, or the whole pack, of length bytes.
type extent struct {
	off, length int64
	whole       bool
}

// cover returns x grown to hold l.
func (x extent) cover(l manifest.Loc) extent {
	if x.length == 0 {
		return extent{off: l.Offset, length: l.Length}
	}
	end := max(x.off+x.length, l.Offset+l.Length)
	x.off = min(x.off, l.Offset)
	x.length = end - x.off
	return x
}

// prefetchRound reads the extents into c and returns the packs that are
// gone, whose forward records it has read.
func prefetchRound(ctx context.Context, st store.Store, packs map[manifest.PackID]extent, parallel int, c *spans) []manifest.PackID {
	var mu sync.Mutex
	var gone []manifest.PackID
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for p, x := range packs {
		g.Go(func() error {
			var b []byte
			var err error
			if c.fwd.listedGone(p) {
				// Listed as repacked: its record, not a GET that fails.
				// (A pack a stopped run left behind is read where its
				// record leads, or by the read that misses it there.)
				err = store.ErrNotFound
			} else if x.whole {
				b, err = st.Get(gctx, manifest.PackKey(p))
			} else {
				b, err = st.GetRange(gctx, manifest.PackKey(p), x.off, x.length)
			}
			switch {
			case err == nil && int64(len(b)) == x.length:
				c.put(p, x.off, b)
			case errors.Is(err, store.ErrNotFound):
				if _, err := c.fwd.Load(gctx, st, p); err == nil {
					mu.Lock()
					gone = append(gone, p)
					mu.Unlock()
				}
			}
			return nil
		})
	}
	_ = g.Wait() // never an error: failures are left to the reads
	return gone
}
