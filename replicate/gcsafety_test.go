package replicate

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

// ageChunks sets the ModTime of every chunk object of st to mtime.
func ageChunks(t *testing.T, st *flaky, mtime time.Time) {
	t.Helper()
	root := st.Store.(*file.Store).Root()
	err := filepath.WalkDir(filepath.Join(root, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chtimes(p, mtime, mtime)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The saver relies on a chunk it finds in the store only while the chunk is
// at most GCGrace/2 old; an older one is uploaded again (see package gc).
func TestSaveReuploadsChunksOlderThanHalfTheGCGrace(t *testing.T) {
	for _, tc := range []struct {
		age    time.Duration
		reuses bool
	}{{20 * time.Minute, true}, {40 * time.Minute, false}} {
		st := newStore(t)
		s := session.New()
		fill(t, s, 20, 1000, 11)
		first, _ := newSaver(t, s, st)
		if _, err := first.Save(context.Background(), "api"); err != nil {
			t.Fatal(err)
		}
		ageChunks(t, st, time.Now().Add(-tc.age))
		other, _ := newSaver(t, session.FromGraph(s.Snapshot()), st)
		other.cfg.Session = "other"
		r, err := other.Save(context.Background(), "api")
		if err != nil {
			t.Fatal(err)
		}
		if reused := r.ChunksUploaded == 0; reused != tc.reuses || (!reused && r.ChunksUploaded != r.ChunksTotal) {
			t.Errorf("chunks %s old (gc grace 1h): uploaded %d of %d", tc.age, r.ChunksUploaded, r.ChunksTotal)
		}
	}
}

// The chunks of the saver's own last save are trusted without a Stat for
// GCGrace/2 after it recorded them, then checked and, being old, uploaded
// again: their manifest may have been pruned meanwhile.
func TestKnownChunksExpireAfterHalfTheGCGrace(t *testing.T) {
	for _, tc := range []struct {
		later  time.Duration
		reuses bool
	}{{29 * time.Minute, true}, {31 * time.Minute, false}} {
		st := newStore(t)
		s := session.New()
		fill(t, s, 20, 1000, 12)
		var offset atomic.Int64
		sv, _ := newSaver(t, s, st)
		sv.cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		offset.Store(int64(-tc.later))
		if _, err := sv.Save(context.Background(), "api"); err != nil {
			t.Fatal(err)
		}
		ageChunks(t, st, time.Now().Add(-tc.later))
		offset.Store(0)
		fill(t, s, 1, 1000, 13) // one node changed
		r, err := sv.Save(context.Background(), "api")
		if err != nil {
			t.Fatal(err)
		}
		if reused := r.ChunksUploaded < r.ChunksTotal/2; reused != tc.reuses {
			t.Errorf("%s after the last save: uploaded %d of %d chunks", tc.later, r.ChunksUploaded, r.ChunksTotal)
		}
	}
}

// stuckCommit blocks every manifest write until the caller's context ends.
type stuckCommit struct{ store.Store }

func (s stuckCommit) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "sessions/") {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.Put(ctx, key, data)
}

// A save that does not commit within GCGrace/4 fails: gc may by then
// delete chunks it relied on.
func TestSaveFailsAfterAQuarterOfTheGCGrace(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 3, 100, 14)
	sv, _ := newSaver(t, s, stuckCommit{st})
	sv.cfg.GCGrace = 400 * time.Millisecond
	_, err := sv.Save(context.Background(), "api")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "a save must commit within 100ms") {
		t.Fatalf("save stuck at its commit: %v", err)
	}
}
