package file_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
