package catalog

import (
	"sync"

	"github.com/pitr-dev/pitr/manifest"
)

// Reading a save's tree costs one round of reads per level; spans makes
// most of those rounds free. A save writes its new tree nodes at the end of
// its pack, children before parents, so reading a node's pack backwards
// from the node (TreeWindow bytes) brings its children along; and a small
// pack (at most WholePack bytes) is read whole at its first use, which
// brings its data chunks along too.
const (
	TreeWindow = 1 << 20
	WholePack  = 2 << 20
)

// spans keeps the byte ranges of packs read during one read of a save.
// Safe for concurrent use.
type spans struct {
	mu sync.Mutex
	m  map[manifest.PackID][]span
}

type span struct {
	off int64
	b   []byte
}

func newSpans() *spans { return &spans{m: map[manifest.PackID][]span{}} }

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

// put keeps b, the bytes of pack p from off.
func (c *spans) put(p manifest.PackID, off int64, b []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[p] = append(c.m[p], span{off, b})
}
