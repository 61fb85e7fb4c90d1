package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

// listKeys are chosen so that a naive directory walk (entries sorted by
// name, descending into directories in place) differs from byte order:
// "a b" < "a-" < "a.x" < "a/b." < "a0" because ' ' < '-' < '.' < '/' < '0'.
// No key is a "directory" of another ("a" and "a/b"): the file store cannot
// hold both.
var listKeys = []string{
	"a.x", "a0", "a/c/d", "a/c/e", "b", "a-", "a/b0", "ab", "a b", "a/b/c",
	"a/b.", "a/bb/x", "z/y/x/w", "a/c.d/e", "aa/x",
}

func sorted(keys []string) []string {
	out := slices.Clone(keys)
	slices.Sort(out)
	return out
}

// entry is what the tests compare: a key, with a "/" suffix and IsPrefix for
// common prefixes.
type entry struct {
	Key      string
	IsPrefix bool
}

func (e entry) String() string {
	if e.IsPrefix {
		return e.Key + " (prefix)"
	}
	return e.Key
}

// model is the reference List: filter keys by Prefix, fold keys with a
// Delimiter after the prefix into common prefixes, then drop the entries
// (keys and common prefixes) at or before StartAfter.
func model(keys []string, opts store.ListOptions) []entry {
	var out []entry
	last := ""
	for _, k := range sorted(keys) {
		if !strings.HasPrefix(k, opts.Prefix) || k <= opts.StartAfter {
			continue
		}
		if opts.Delimiter != "" {
			if i := strings.Index(k[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				p := k[:len(opts.Prefix)+i+len(opts.Delimiter)]
				if p != last && p > opts.StartAfter {
					out = append(out, entry{p, true})
					last = p
				}
				continue
			}
		}
		out = append(out, entry{Key: k})
	}
	return out
}

// list returns everything List reports, checking the ObjectInfo fields.
func list(t *testing.T, s store.Store, opts store.ListOptions) []entry {
	t.Helper()
	var out []entry
	err := s.List(t.Context(), opts, func(o store.ObjectInfo) error {
		if o.IsPrefix {
			if !strings.HasSuffix(o.Key, opts.Delimiter) || opts.Delimiter == "" {
				t.Errorf("List(%+v): prefix entry %q does not end with the delimiter", opts, o.Key)
			}
		} else if o.ETag == "" || o.ModTime.IsZero() {
			t.Errorf("List(%+v): object %q has no ETag or ModTime: %+v", opts, o.Key, o)
		}
		out = append(out, entry{o.Key, o.IsPrefix})
		return nil
	})
	if err != nil {
		t.Fatalf("List(%+v): %v", opts, err)
	}
	return out
}

func wantEntries(t *testing.T, s store.Store, opts store.ListOptions, want []entry) {
	t.Helper()
	got := list(t, s, opts)
	if !slices.Equal(got, want) {
		t.Errorf("List(%+v)\n got %v\nwant %v", opts, got, want)
	}
}

func wantList(t *testing.T, s store.Store, opts store.ListOptions, keys []string) {
	t.Helper()
	var want []entry
	for _, k := range keys {
		want = append(want, entry{Key: k})
	}
	wantEntries(t, s, opts, want)
}

// putAll writes key -> key for every key, from several goroutines.
func putAll(t *testing.T, s store.Store, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan string)
	var mu sync.Mutex
	var firstErr error
	for range 16 {
		wg.Go(func() {
			for k := range next {
				if err := s.Put(t.Context(), k, []byte(k)); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("Put: %v", firstErr)
	}
}

func testListEmpty(t *testing.T, s store.Store) {
	for _, opts := range []store.ListOptions{{}, {Prefix: "a/"}, {Delimiter: "/"}, {StartAfter: "x"}} {
		wantEntries(t, s, opts, nil)
	}
}

func testListOrder(t *testing.T, s store.Store) {
	putAll(t, s, listKeys)
	wantList(t, s, store.ListOptions{}, sorted(listKeys))
	var sizes []int64
	err := s.List(t.Context(), store.ListOptions{Prefix: "a/c/"}, func(o store.ObjectInfo) error {
		sizes = append(sizes, o.Size)
		return nil
	})
	if err != nil || !slices.Equal(sizes, []int64{5, 5}) {
		t.Errorf("List sizes under a/c/ = %v, %v; want [5 5], nil", sizes, err)
	}
}

// testListOptions compares List with the model for combinations of Prefix,
// StartAfter, Delimiter and Limit.
func testListOptions(t *testing.T, s store.Store) {
	putAll(t, s, listKeys)
	prefixes := []string{"", "a", "a/", "a/b", "a/b/", "a/c/", "a.", "b", "z/y/", "zzz", "a/c"}
	afters := []string{"", "a", "a-", "a/", "a/b", "a/bb", "a/c/d", "a0", "b", "zzz"}
	for _, prefix := range prefixes {
		for _, after := range afters {
			for _, delim := range []string{"", "/"} {
				for _, limit := range []int{0, 1, 2} {
					if limit > 0 && prefix != "" && prefix != "a/" {
						continue // limits are exercised enough on the big listings
					}
					opts := store.ListOptions{Prefix: prefix, StartAfter: after, Delimiter: delim, Limit: limit}
					wantEntries(t, s, opts, model(listKeys, opts))
				}
			}
		}
	}
	// Spot checks of the model itself, so a wrong model cannot hide a bug.
	wantEntries(t, s, store.ListOptions{Prefix: "a/", Delimiter: "/"}, []entry{
		{"a/b.", false}, {"a/b/", true}, {"a/b0", false}, {"a/bb/", true},
		{"a/c.d/", true}, {"a/c/", true},
	})
	wantList(t, s, store.ListOptions{Prefix: "a/b", StartAfter: "a/b."}, []string{"a/b/c", "a/b0", "a/bb/x"})
}

// testListPages lists more keys than one S3 page (1000) holds, and mixes
// objects and common prefixes across small pages.
func testListPages(t *testing.T, s store.Store) {
	var keys []string
	for i := range 1100 {
		keys = append(keys, fmt.Sprintf("many/%04d", i))
	}
	for i := range 40 {
		switch i % 3 {
		case 0:
			keys = append(keys, fmt.Sprintf("mix/k%02d/x", i), fmt.Sprintf("mix/k%02d/y", i))
		case 1:
			keys = append(keys, fmt.Sprintf("mix/k%02d.y", i), fmt.Sprintf("mix/k%02d/z", i), fmt.Sprintf("mix/k%02d_", i))
		default:
			keys = append(keys, fmt.Sprintf("mix/k%02d", i))
		}
	}
	putAll(t, s, keys)
	for _, opts := range []store.ListOptions{
		{Prefix: "many/"},
		{Prefix: "many/", Limit: 100},
		{Prefix: "many/", StartAfter: "many/0998"},
		{Prefix: "many/", Delimiter: "/"},
		{Delimiter: "/"},
		{Prefix: "mix/"},
		{Prefix: "mix/", Delimiter: "/"},
		{Prefix: "mix/", Delimiter: "/", Limit: 3},
		{Prefix: "mix/", Delimiter: "/", Limit: 4, StartAfter: "mix/k10.y"},
		{Prefix: "mix/k1", Delimiter: "/", Limit: 2},
	} {
		wantEntries(t, s, opts, model(keys, opts))
	}
}

func testListStop(t *testing.T, s store.Store) {
	putAll(t, s, listKeys)
	for _, stop := range []error{store.ErrStop, fmt.Errorf("done: %w", store.ErrStop)} {
		for _, opts := range []store.ListOptions{{}, {Limit: 1}, {Delimiter: "/", Prefix: "a/"}} {
			calls := 0
			err := s.List(t.Context(), opts, func(store.ObjectInfo) error {
				calls++
				if calls == 2 {
					return stop
				}
				return nil
			})
			if err != nil || calls != 2 {
				t.Errorf("List(%+v) stopped at the 2nd entry with %v: error %v after %d calls, want nil after 2",
					opts, stop, err, calls)
			}
		}
	}
}

func testListCallbackError(t *testing.T, s store.Store) {
	putAll(t, s, listKeys)
	boom := errors.New("boom")
	calls := 0
	err := s.List(t.Context(), store.ListOptions{}, func(store.ObjectInfo) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("List with a failing callback: error %v after %d calls, want boom after 1", err, calls)
	}
}

// testListCallbackUsesStore: the callback may read, write and delete.
func testListCallbackUsesStore(t *testing.T, s store.Store) {
	keys := []string{"cb/1", "cb/2", "cb/3"}
	putAll(t, s, keys)
	var seen []string
	err := s.List(t.Context(), store.ListOptions{Prefix: "cb/"}, func(o store.ObjectInfo) error {
		seen = append(seen, o.Key)
		if _, err := s.Get(t.Context(), o.Key); err != nil {
			return err
		}
		if err := s.Put(t.Context(), "other/"+o.Key, nil); err != nil {
			return err
		}
		return s.Delete(t.Context(), o.Key)
	})
	if err != nil || !slices.Equal(seen, keys) {
		t.Fatalf("List calling the store: saw %v, error %v; want %v, nil", seen, err, keys)
	}
	wantList(t, s, store.ListOptions{}, []string{"other/cb/1", "other/cb/2", "other/cb/3"})
}
