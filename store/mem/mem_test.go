package mem_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/mem"
	"github.com/pitr-dev/pitr/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return mem.New(mem.Options{}) })
}

func TestRangedReads(t *testing.T) {
	storetest.RangedReads(t, mem.New(mem.Options{}))
}

// TestClock: ModTime is the injected clock's time at the write.
func TestClock(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)
	fake := clock.NewFake(t0)
	s := mem.New(mem.Options{Clock: fake})
	ctx := t.Context()
	if err := s.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	fake.Advance(time.Minute)
	if _, err := s.PutIf(ctx, "b", []byte("y"), store.Condition{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"a": t0, "b": t0.Add(time.Minute)}
	for key, at := range want {
		info, err := s.Stat(ctx, key)
		if err != nil || !info.ModTime.Equal(at) {
			t.Errorf("Stat(%q) = %+v, %v; want ModTime %v", key, info, err, at)
		}
		if _, info, err := s.GetWithInfo(ctx, key); err != nil || !info.ModTime.Equal(at) {
			t.Errorf("GetWithInfo(%q) info = %+v, %v; want ModTime %v", key, info, err, at)
		}
	}
	err := s.List(ctx, store.ListOptions{}, func(o store.ObjectInfo) error {
		if !o.ModTime.Equal(want[o.Key]) {
			t.Errorf("List: %q ModTime %v, want %v", o.Key, o.ModTime, want[o.Key])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The zero Options use the wall clock.
	wall := clock.Real()
	before := wall.Now()
	w := mem.New(mem.Options{})
	if err := w.Put(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	info, err := w.Stat(ctx, "k")
	if after := wall.Now(); err != nil || info.ModTime.Before(before) || info.ModTime.After(after) {
		t.Errorf("Stat with the wall clock = %+v, %v; want a ModTime between %v and %v", info, err, before, after)
	}
}

// TestCopies: the store keeps copies of what it is given and hands out
// copies of what it holds.
func TestCopies(t *testing.T) {
	s := mem.New(mem.Options{})
	ctx := t.Context()
	in := []byte("hello")
	if err := s.Put(ctx, "k", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'J'
	got, err := s.Get(ctx, "k")
	if err != nil || string(got) != "hello" {
		t.Fatalf("Get = %q, %v; want hello", got, err)
	}
	got[0] = 'Y'
	whole, _, err := s.GetWithInfo(ctx, "k")
	if err != nil || string(whole) != "hello" {
		t.Fatalf("GetWithInfo after modifying Get's result = %q, %v; want hello", whole, err)
	}
	whole[1] = 'A'
	part, err := s.GetRange(ctx, "k", 1, 3)
	if err != nil || string(part) != "ell" {
		t.Fatalf("GetRange = %q, %v; want ell", part, err)
	}
	part[0] = 'Z'
	if cap(part) != 3 {
		t.Errorf("GetRange result has capacity %d, want 3 (appending must not reach the object)", cap(part))
	}
	if got, _ := s.Get(ctx, "k"); string(got) != "hello" {
		t.Errorf("Get after modifying every result = %q, want hello", got)
	}
	empty, err := s.Get(ctx, "k2")
	if !errors.Is(err, store.ErrNotFound) || empty != nil {
		t.Errorf("Get of a missing key = %q, %v; want nil, ErrNotFound", empty, err)
	}
	if err := s.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "empty"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Get of an empty object = %#v, %v; want a non-nil empty slice", got, err)
	}
}

// TestETag: the ETag is S3's, the MD5 of the content, so equal content
// written twice has equal ETags, as on a bucket.
func TestETag(t *testing.T) {
	s := mem.New(mem.Options{})
	ctx := t.Context()
	data := []byte("content")
	sum := md5.Sum(data)
	want := hex.EncodeToString(sum[:])
	tag, err := s.PutIf(ctx, "k", data, store.Condition{IfNoneMatch: true})
	if err != nil || tag != want {
		t.Fatalf("PutIf = %q, %v; want ETag %q", tag, err, want)
	}
	tag2, err := s.PutIf(ctx, "k", data, store.Condition{IfMatch: tag})
	if err != nil || tag2 != tag {
		t.Errorf("PutIf of the same content = %q, %v; want ETag %q again", tag2, err, tag)
	}
	if err := s.Put(ctx, "other", data); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "other"); err != nil || info.ETag != want {
		t.Errorf("Stat(other) = %+v, %v; want ETag %q", info, err, want)
	}
}

// TestFileAndDirectory: unlike the file store, "a" and "a/b" can both be
// objects, as in a bucket.
func TestFileAndDirectory(t *testing.T) {
	s := mem.New(mem.Options{})
	ctx := t.Context()
	for _, k := range []string{"a/b", "a", "a/b/c"} {
		if err := s.Put(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	if got := listAll(t, s, store.ListOptions{}); !slices.Equal(got, []string{"a", "a/b", "a/b/c"}) {
		t.Errorf("List = %v", got)
	}
	if got := listAll(t, s, store.ListOptions{Delimiter: "/"}); !slices.Equal(got, []string{"a", "a/ (prefix)"}) {
		t.Errorf("List with a delimiter = %v", got)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d, want 3", s.Len())
	}
	if err := s.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, s, store.ListOptions{}); !slices.Equal(got, []string{"a", "a/b/c"}) {
		t.Errorf("List after Delete = %v", got)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
}

// TestListPages: a listing sees writes made meanwhile in its later pages,
// as a paged S3 listing does.
func TestListPages(t *testing.T) {
	s := mem.New(mem.Options{})
	ctx := t.Context()
	for _, k := range []string{"k1", "k3", "k5"} {
		if err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	err := s.List(ctx, store.ListOptions{Limit: 1}, func(o store.ObjectInfo) error {
		seen = append(seen, o.Key)
		switch o.Key {
		case "k1":
			return s.Put(ctx, "k2", nil)
		case "k2":
			return s.Delete(ctx, "k3")
		}
		return nil
	})
	if err != nil || !slices.Equal(seen, []string{"k1", "k2", "k5"}) {
		t.Errorf("List = %v, %v; want [k1 k2 k5]", seen, err)
	}
}

func TestString(t *testing.T) {
	a, b := mem.New(mem.Options{}), mem.New(mem.Options{})
	if !strings.HasPrefix(a.String(), "mem://") || a.String() == b.String() {
		t.Errorf("String of two stores: %q, %q; want distinct mem:// names", a, b)
	}
	if got := mem.New(mem.Options{Name: "fixture"}).String(); got != "mem://fixture" {
		t.Errorf("String with a Name = %q, want mem://fixture", got)
	}
	_, err := a.Get(t.Context(), "missing/key")
	if err == nil || !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), "missing/key") {
		t.Errorf("Get error %v does not name the store and the key", err)
	}
}

func listAll(t *testing.T, s store.Store, opts store.ListOptions) []string {
	t.Helper()
	var out []string
	err := s.List(t.Context(), opts, func(o store.ObjectInfo) error {
		if o.IsPrefix {
			out = append(out, o.Key+" (prefix)")
		} else {
			out = append(out, o.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List(%+v): %v", opts, err)
	}
	return out
}
