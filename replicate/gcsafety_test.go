package replicate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// A save references only the packs of its base save, the newest committed
// one (package gc): a saver primed with the newest save reuses its chunks;
// one primed with an older save (a rollback), or whose base is not the
// store's newest, uploads everything; and no save Stats a chunk.
func TestSaveReusesOnlyTheNewestSave(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newest   bool // SetLast names the primed save
		rollback bool // ForceNext: the commit of a rollback
		reuses   bool
	}{
		{"primed with the newest save", true, false, true},
		{"primed with an older save", false, false, false},
		{"rollback commit", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := newStore(t)
			s := session.New()
			fill(t, s, 80, 1000, 11)
			first, _ := newSaver(t, s, st)
			if _, err := first.Save(ctx, "api"); err != nil {
				t.Fatal(err)
			}
			m, err := catalog.Newest(ctx, st, "test")
			if err != nil {
				t.Fatal(err)
			}
			restarted := session.FromGraph(s.Snapshot())
			second, _ := newSaver(t, restarted, st)
			second.Prime(m)
			if tc.newest {
				second.SetLast(m)
			} else {
				older := *m
				older.ID = manifest.NewID(m.Time.Add(time.Second))
				second.SetLast(&older)
			}
			if tc.rollback {
				second.ForceNext()
			}
			fill(t, restarted, 1, 1000, 13) // one node changed
			stats := st.stats.Load()
			r, err := second.Save(ctx, "api")
			if err != nil {
				t.Fatal(err)
			}
			if reused := r.ChunksUploaded < r.ChunksTotal/2; reused != tc.reuses {
				t.Errorf("uploaded %d of %d chunks", r.ChunksUploaded, r.ChunksTotal)
			}
			if n := st.stats.Load() - stats; n != 0 {
				t.Errorf("the save Stat-ed %d objects", n)
			}
		})
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

// A save that does not commit within GCGrace.SaveDeadline() (a quarter of
// the grace) fails: gc may by then delete chunks it relied on.
func TestSaveFailsAfterAQuarterOfTheGCGrace(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 3, 100, 14)
	sv, _ := newSaver(t, s, stuckCommit{st})
	sv.cfg.GCGrace = gcsafety.Grace(400 * time.Millisecond)
	_, err := sv.Save(context.Background(), "api")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "a save must commit within 100ms") {
		t.Fatalf("save stuck at its commit: %v", err)
	}
}
