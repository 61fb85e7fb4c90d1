package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/store/storetest"
)

func newStore(t *testing.T) *file.Store {
	t.Helper()
	s, err := file.New(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func TestNewErrors(t *testing.T) {
	if _, err := file.New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := file.New(f); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("New(file) error = %v, want one naming %s", err, f)
	}
}

// TestOpenCreatesNothing checks that Open takes an existing directory as
// it is and refuses every other root, creating nothing.
func TestOpenCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, root string
		noStore    bool // the error wraps store.ErrNoStore
	}{
		{"empty root", "", false},
		{"missing directory", filepath.Join(dir, "missing"), true},
		{"missing parents", filepath.Join(dir, "a", "b", "c"), true},
		{"missing relative directory", filepath.Join("rel", "store"), true},
		{"below a file", filepath.Join(f, "store"), true},
		{"a file", f, false},
	} {
		_, err := file.Open(c.root)
		if err == nil {
			t.Errorf("%s: Open(%q) succeeded", c.name, c.root)
			continue
		}
		if got := errors.Is(err, store.ErrNoStore); got != c.noStore {
			t.Errorf("%s: Open(%q) = %v; wraps store.ErrNoStore: %v, want %v", c.name, c.root, err, got, c.noStore)
		}
		if c.root != "" && !strings.Contains(err.Error(), filepath.Base(c.root)) {
			t.Errorf("%s: Open(%q) = %v, want an error naming it", c.name, c.root, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Open(%q) error %q is not one line", c.name, c.root, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 {
		t.Errorf("Open created something in %s: %v, %v", dir, ents, err)
	}

	existing := filepath.Join(dir, "existing")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := file.Open(existing)
	if err != nil {
		t.Fatalf("Open of an existing directory: %v", err)
	}
	if err := s.Put(t.Context(), "sessions/s/x", []byte("x")); err != nil {
		t.Fatalf("Put through a store from Open: %v", err)
	}
}

func TestRelativeRoot(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := file.New("rel/store")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.Root()) || !strings.HasSuffix(s.Root(), filepath.Join("rel", "store")) {
		t.Errorf("Root() = %q, want an absolute path ending in rel/store", s.Root())
	}
	if !strings.HasPrefix(s.String(), "file:///") {
		t.Errorf("String() = %q, want a file:/// URL", s.String())
	}
}

func TestLayoutAndTempFiles(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "chunks/ab/cd", []byte("x")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Root(), "chunks", "ab", "cd"))
	if err != nil || string(b) != "x" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	// A temp file left by a crash is invisible and its name is reserved.
	tmp := filepath.Join(s.Root(), "chunks", "ab", file.TempPrefix+"123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	err = s.List(ctx, store.ListOptions{}, func(o store.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil || len(keys) != 1 || keys[0] != "chunks/ab/cd" {
		t.Errorf("List = %v, %v; want [chunks/ab/cd]", keys, err)
	}
	if err := s.Put(ctx, "chunks/ab/"+file.TempPrefix+"x", nil); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("Put of a temp-file name: %v, want ErrInvalidKey", err)
	}
	entries, err := os.ReadDir(filepath.Join(s.Root(), "chunks", "ab"))
	if err != nil || len(entries) != 2 {
		t.Errorf("directory holds %v, %v; want the object and the planted temp file only", entries, err)
	}
}

func TestDeleteRemovesEmptyDirs(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"sessions/s1/a/b", "sessions/s2/c"} {
		if err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "sessions/s1/a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "sessions", "s1")); !os.IsNotExist(err) {
		t.Errorf("sessions/s1 still exists after its last key was deleted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Root(), "sessions", "s2", "c")); err != nil {
		t.Errorf("sibling key lost: %v", err)
	}
	if _, err := os.Stat(s.Root()); err != nil {
		t.Errorf("root removed: %v", err)
	}
}

func TestFileDirectoryConflict(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if err := s.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	err := s.Put(ctx, "a/b/c", []byte("y"))
	if err == nil || !strings.Contains(err.Error(), `"a/b"`) {
		t.Errorf("Put below a key: %v, want an error naming \"a/b\"", err)
	}
	err = s.Put(ctx, "a", []byte("y"))
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("Put over a directory of keys: %v, want an error naming \"a\"", err)
	}
	if _, err := s.Get(ctx, "a/b/c"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get below a key: %v, want ErrNotFound", err)
	}
}

// Every write gives the key a new ETag, even with the same content, so a
// conditional write can never be fooled by an old ETag coming back.
func TestETagChangesOnEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	seen := map[string]bool{}
	tag, err := s.PutIf(ctx, "k", []byte("same"), store.Condition{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	seen[tag] = true
	for i := range 50 {
		if i%2 == 0 {
			tag, err = s.PutIf(ctx, "k", []byte("same"), store.Condition{IfMatch: tag})
		} else {
			err = s.Put(ctx, "k", []byte("same"))
			if err == nil {
				var info store.ObjectInfo
				info, err = s.Stat(ctx, "k")
				tag = info.ETag
			}
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if seen[tag] {
			t.Fatalf("write %d of the same content repeated ETag %q", i, tag)
		}
		seen[tag] = true
	}
}

// Conditional writes through two Store values on one directory (as two
// processes would have) exclude each other: of many concurrent If-Match
// writers exactly one wins, again and again.
func TestPutIfAcrossStores(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	a, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := a.PutIf(ctx, "lease", []byte("0"), store.Condition{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		var (
			wg   sync.WaitGroup
			wins atomic.Int32
			next atomic.Value
		)
		for i := range 8 {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				got, err := st.PutIf(ctx, "lease", fmt.Appendf(nil, "%d-%d", round, i), store.Condition{IfMatch: tag})
				switch {
				case err == nil:
					wins.Add(1)
					next.Store(got)
				case !errors.Is(err, store.ErrPreconditionFailed):
					t.Errorf("round %d writer %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins.Load())
		}
		tag = next.Load().(string)
	}
	// No temporary files are left behind by the losers.
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("store directory holds %v, %v; want only the key", entries, err)
	}
}
