package gc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/gc"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

// world is a store with two sessions of format 2 saves (packs) and one,
// "v1", with a format 1 save (an object per chunk), every object two hours
// old as seen from now, plus three unreferenced chunk objects: old (2 h),
// young (10 min) and exactly as old as the grace (1 h, kept: only older
// goes), and an old unreferenced pack (a failed save's).
type world struct {
	st                 *file.Store
	now                time.Time
	a, b, v1           map[string]bool // object keys of the saves of session a, b, v1
	old, young, atEdge string
	oldPack            string
	freed              int64 // size of old and oldPack
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{st: newFileStore(t), now: time.Now()}
	quiet := slog.New(slog.DiscardHandler)
	sa := session.New()
	putNodes(t, sa, 0, 30, 2000, 1)
	sva := replicate.New(sa, replicate.Config{Store: w.st, Session: "a", Logger: quiet})
	if _, err := sva.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	putNodes(t, sa, 0, 3, 2000, 50)
	if _, err := sva.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	sb := session.FromGraph(sa.Snapshot()) // shares all but what b changes
	putNodes(t, sb, 10, 3, 2000, 90)
	if _, err := replicate.New(sb, replicate.Config{Store: w.st, Session: "b", Logger: quiet}).Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	v1 := session.New()
	putNodes(t, v1, 100, 12, 2000, 7)
	putV1Save(t, w.st, "v1", w.now.Add(-3*time.Hour), v1.Snapshot())
	w.oldPack = manifest.PackKey(manifest.NewPackID())
	if err := w.st.Put(ctx, w.oldPack, []byte("a pack no save names")); err != nil {
		t.Fatal(err)
	}
	w.old = putChunk(t, w.st, []byte("old unreferenced chunk"))
	w.young = putChunk(t, w.st, []byte("young unreferenced chunk"))
	w.atEdge = putChunk(t, w.st, []byte("unreferenced chunk exactly as old as the grace"))
	ageChunks(t, w.st, w.now.Add(-2*time.Hour))
	setMTime(t, w.st, w.young, w.now.Add(-10*time.Minute))
	setMTime(t, w.st, w.atEdge, w.now.Add(-gcsafety.DefaultGrace.Duration()))
	for _, k := range []string{w.old, w.oldPack} {
		info, err := w.st.Stat(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		w.freed += info.Size
	}
	w.a, w.b, w.v1 = keysOf(t, w.st, "a"), keysOf(t, w.st, "b"), keysOf(t, w.st, "v1")
	return w
}

func (w *world) opts(mod func(*gc.Options)) gc.Options {
	// These tests are of the mark and the sweep: no repacking (repack_test.go).
	o := gc.Options{Grace: gcsafety.DefaultGrace, Clock: clock.NewFake(w.now), MaxUnused: 1}
	if mod != nil {
		mod(&o)
	}
	return o
}

// restorable fails unless every save of session restores.
func restorable(t *testing.T, st store.Store, sessionName string) {
	t.Helper()
	ms, err := catalog.List(context.Background(), st, sessionName)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, _, _, err := restore.Fetch(context.Background(), st, m, 4, nil); err != nil {
			t.Errorf("save %s of session %s after gc: %v", m.ID, sessionName, err)
		}
	}
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, w *world) gc.Options
		wantErr error
		// wrap, if set, wraps the store gc runs on.
		wrap func(t *testing.T, w *world) store.Store
		// check inspects the store and report after the run.
		check func(t *testing.T, w *world, rep gc.Report)
	}{{
		name:  "keeps every referenced pack and chunk and the young, deletes the old unreferenced",
		setup: func(t *testing.T, w *world) gc.Options { return w.opts(nil) },
		check: func(t *testing.T, w *world, rep gc.Report) {
			packs := len(w.a) + len(w.b) - shared(w)
			if rep.Sessions != 3 || rep.Saves != 4 || rep.Referenced != len(w.v1) || rep.ReferencedPacks != packs || rep.Missing != 0 ||
				rep.Deleted != 2 || rep.BytesFreed != w.freed || rep.KeptYoung != 2 || rep.Scanned != packs+len(w.v1)+4 {
				t.Errorf("report %+v, want 3 sessions, 4 saves, %d chunks and %d packs referenced, 2 deleted (%d bytes), 2 kept young",
					rep, len(w.v1), packs, w.freed)
			}
			present(t, w.st, slices.Collect(maps.Keys(w.a)), true)
			present(t, w.st, slices.Collect(maps.Keys(w.b)), true)
			present(t, w.st, slices.Collect(maps.Keys(w.v1)), true)
			present(t, w.st, []string{w.young, w.atEdge}, true)
			present(t, w.st, []string{w.old, w.oldPack}, false)
			restorable(t, w.st, "a")
			restorable(t, w.st, "b")
			restorable(t, w.st, "v1")
		},
	}, {
		name: "dry run deletes nothing and reports what would go",
		setup: func(t *testing.T, w *world) gc.Options {
			return w.opts(func(o *gc.Options) { o.DryRun = true })
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			if !rep.DryRun || rep.Deleted != 2 || rep.BytesFreed != w.freed {
				t.Errorf("report %+v", rep)
			}
			present(t, w.st, []string{w.old, w.oldPack, w.young, w.atEdge}, true)
		},
	}, {
		name: "a pruned session's packs go, another's stay",
		setup: func(t *testing.T, w *world) gc.Options {
			ms, err := catalog.List(ctx, w.st, "a")
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if err := catalog.Delete(ctx, w.st, "a", m.ID); err != nil {
					t.Fatal(err)
				}
			}
			return w.opts(nil)
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			var onlyA []string
			for k := range w.a {
				if !w.b[k] {
					onlyA = append(onlyA, k)
				}
			}
			if len(onlyA) == 0 {
				t.Fatal("fixture: session a must have packs of its own")
			}
			if rep.Sessions != 2 || rep.Deleted != len(onlyA)+2 {
				t.Errorf("report %+v, want 2 sessions, %d deleted", rep, len(onlyA)+2)
			}
			present(t, w.st, onlyA, false)
			present(t, w.st, slices.Collect(maps.Keys(w.b)), true)
			restorable(t, w.st, "b")
		},
	}, {
		name: "grace 0 deletes young unreferenced chunks too",
		setup: func(t *testing.T, w *world) gc.Options {
			return w.opts(func(o *gc.Options) { o.Grace = 0 })
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			if rep.Deleted != 4 || rep.KeptYoung != 0 {
				t.Errorf("report %+v", rep)
			}
			present(t, w.st, []string{w.old, w.oldPack, w.young, w.atEdge}, false)
			restorable(t, w.st, "a")
		},
	}, {
		name: "an unreadable manifest aborts before deleting anything",
		setup: func(t *testing.T, w *world) gc.Options {
			key, err := manifest.Key("b", manifest.NewID(w.now))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.st.Put(ctx, key, []byte("{not json")); err != nil {
				t.Fatal(err)
			}
			return w.opts(nil)
		},
		wantErr: manifest.ErrInvalid,
		check:   func(t *testing.T, w *world, rep gc.Report) { present(t, w.st, []string{w.old}, true) },
	}, {
		name: "a missing list chunk aborts before deleting anything",
		setup: func(t *testing.T, w *world) gc.Options {
			ms, err := catalog.List(ctx, w.st, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if err := w.st.Delete(ctx, chunker.ObjectKey(ms[0].ChunkList.Chunks[0].ID)); err != nil {
				t.Fatal(err)
			}
			return w.opts(nil)
		},
		wantErr: store.ErrNotFound,
		check:   func(t *testing.T, w *world, rep gc.Report) { present(t, w.st, []string{w.old}, true) },
	}, {
		name: "a corrupt list chunk aborts before deleting anything",
		setup: func(t *testing.T, w *world) gc.Options {
			ms, err := catalog.List(ctx, w.st, "v1")
			if err != nil {
				t.Fatal(err)
			}
			body, err := chunker.Compress([]byte("not the list"))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.st.Put(ctx, chunker.ObjectKey(ms[0].ChunkList.Chunks[0].ID), body); err != nil {
				t.Fatal(err)
			}
			return w.opts(nil)
		},
		wantErr: chunker.ErrCorrupt,
		check:   func(t *testing.T, w *world, rep gc.Report) { present(t, w.st, []string{w.old}, true) },
	}, {
		name: "objects under chunks/ that are not chunks are left alone",
		setup: func(t *testing.T, w *world) gc.Options {
			if err := w.st.Put(ctx, "chunks/README", []byte("hello")); err != nil {
				t.Fatal(err)
			}
			setMTime(t, w.st, "chunks/README", w.now.Add(-48*time.Hour))
			return w.opts(nil)
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			if rep.Ignored != 1 || rep.Deleted != 2 {
				t.Errorf("report %+v", rep)
			}
			present(t, w.st, []string{"chunks/README"}, true)
		},
	}, {
		name:  "a candidate rewritten after the listing is kept",
		setup: func(t *testing.T, w *world) gc.Options { return w.opts(nil) },
		wrap: func(t *testing.T, w *world) store.Store {
			return &rewriteAfterList{Store: w.st, t: t, key: w.old}
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			if rep.Deleted != 1 || rep.KeptYoung != 3 {
				t.Errorf("report %+v", rep)
			}
			present(t, w.st, []string{w.old}, true)
		},
	}, {
		name: "referenced packs that are missing are counted",
		setup: func(t *testing.T, w *world) gc.Options {
			for k := range w.b {
				if !w.a[k] {
					if err := os.Remove(filepath.Join(w.st.Root(), filepath.FromSlash(k))); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			return w.opts(func(o *gc.Options) { o.DryRun = true })
		},
		check: func(t *testing.T, w *world, rep gc.Report) {
			if rep.Missing != 1 {
				t.Errorf("report %+v, want 1 missing", rep)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			opts := tc.setup(t, w)
			var st store.Store = w.st
			if tc.wrap != nil {
				st = tc.wrap(t, w)
			}
			var log strings.Builder
			opts.Log = &log
			rep, err := gc.Run(ctx, st, opts)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("gc: %v", err)
			case tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !errors.Is(err, gc.ErrAborted)):
				t.Fatalf("gc error %v, want %v and %v", err, tc.wantErr, gc.ErrAborted)
			case tc.wantErr != nil && rep.Deleted != 0:
				t.Fatalf("aborted gc deleted %d chunks", rep.Deleted)
			case tc.wantErr == nil && !strings.Contains(log.String(), "objects under chunks/"):
				t.Errorf("progress log %q", log.String())
			}
			tc.check(t, w, rep)
		})
	}
}

func shared(w *world) int {
	n := 0
	for k := range w.a {
		if w.b[k] {
			n++
		}
	}
	return n
}

func present(t *testing.T, st store.Store, keys []string, want bool) {
	t.Helper()
	for _, k := range keys {
		if got := exists(t, st, k); got != want {
			t.Errorf("%s present %v, want %v", k, got, want)
		}
	}
}

// rewriteAfterList rewrites key (as a saver refreshing an old chunk would)
// right after a listing of chunks/ ends, before gc deletes anything.
type rewriteAfterList struct {
	store.Store
	t   *testing.T
	key string
}

func (r *rewriteAfterList) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	err := r.Store.List(ctx, opts, fn)
	if err == nil && opts.Prefix == "chunks/" {
		data, gerr := r.Store.Get(ctx, r.key)
		if gerr == nil {
			gerr = r.Store.Put(ctx, r.key, data)
		}
		if gerr != nil {
			r.t.Error(gerr)
		}
	}
	return err
}

func TestRunRejectsNegativeGrace(t *testing.T) {
	if _, err := gc.Run(context.Background(), newFileStore(t), gc.Options{Grace: gcsafety.Grace(-time.Second)}); err == nil {
		t.Fatal("negative grace accepted")
	}
}

func TestRunOnEmptyStore(t *testing.T) {
	rep, err := gc.Run(context.Background(), newFileStore(t), gc.Options{Grace: gcsafety.Grace(time.Hour), Log: io.Discard})
	if err != nil || rep.Scanned != 0 || rep.Deleted != 0 || rep.Sessions != 0 {
		t.Fatalf("empty store: %+v %v", rep, err)
	}
}
