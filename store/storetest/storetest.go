// Package storetest is the conformance suite every store.Store
// implementation runs from its own tests: storetest.Run(t, newStore).
//
// The suite checks the contract documented on store.Store: round trips of
// empty to 1 MiB objects, overwrites, ErrNotFound for missing keys, keys
// rejected by store.ValidateKey, List in byte order with Prefix, StartAfter,
// Delimiter, Limit and ErrStop (against a reference model), many concurrent
// writers, cancelled contexts, that neither String nor errors leak secrets,
// ranged reads (GetRange of any range inside an object, untransformed
// binary bytes, ErrInvalidRange for a range beyond the end or a negative
// offset or empty length, ErrNotFound for a missing key), and conditional
// writes: GetWithInfo's ETag guards PutIf, If-None-Match creates only a
// missing key, If-Match updates only the version it names, and of
// concurrent conditional writers exactly one wins.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

// Run runs the conformance suite against stores made by newStore, which must
// return a new, empty store on every call (a fresh directory or bucket) and
// register its cleanup with t. secrets are strings (passwords, secret keys)
// that must appear neither in String() nor in any error; the values of
// MINIO_ROOT_PASSWORD, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN are
// checked too. Subtests run in parallel.
//
// The suite never stores both "a" and "a/b": the file store cannot (a path
// is a file or a directory), so portable key layouts avoid it too.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, secrets ...string) {
	t.Helper()
	for _, env := range []string{"MINIO_ROOT_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		if v := os.Getenv(env); len(v) >= 8 {
			secrets = append(secrets, v)
		}
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"PrefixIsNotAnObject", testPrefixIsNotAnObject},
		{"InvalidKeys", testInvalidKeys},
		{"SpecialKeys", testSpecialKeys},
		{"ListEmpty", testListEmpty},
		{"ListOrder", testListOrder},
		{"ListOptions", testListOptions},
		{"ListPages", testListPages},
		{"ListStop", testListStop},
		{"ListCallbackError", testListCallbackError},
		{"ListCallbackUsesStore", testListCallbackUsesStore},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentOverwrites", testConcurrentOverwrites},
		{"CanceledContext", testCanceledContext},
		{"GetWithInfo", testGetWithInfo},
		{"GetRange", testGetRange},
		{"GetRangeLarge", testGetRangeLarge},
		{"GetRangeBinary", testGetRangeBinary},
		{"GetRangeBeyondEnd", testGetRangeBeyondEnd},
		{"GetRangeInvalid", testGetRangeInvalid},
		{"GetRangeMissing", testGetRangeMissing},
		{"PutIfNoneMatch", testPutIfNoneMatch},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfInvalid", testPutIfInvalid},
		{"PutIfConcurrentCreate", testPutIfConcurrentCreate},
		{"PutIfConcurrentUpdate", testPutIfConcurrentUpdate},
		{"NoSecrets", func(t *testing.T, s store.Store) { testNoSecrets(t, s, secrets) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// data returns n deterministic pseudo-random bytes.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustPut(t *testing.T, s store.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, b); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes, want %d bytes (%s)", key, len(got), len(want), diffAt(got, want))
	}
}

func diffAt(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "one is a prefix of the other"
}

func mustStat(t *testing.T, s store.Store, key string) store.ObjectInfo {
	t.Helper()
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	return info
}

func wantNotFound(t *testing.T, s store.Store, key string) {
	t.Helper()
	if _, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	for i, n := range []int{0, 1, 1000, 64 << 10, 1 << 20} {
		key := fmt.Sprintf("objects/size-%d", n)
		want := data(uint64(i), n)
		in := bytes.Clone(want)
		mustPut(t, s, key, in)
		clear(in) // the store must not keep the caller's slice
		mustGet(t, s, key, want)
		info := mustStat(t, s, key)
		if info.Key != key || info.Size != int64(n) || info.IsPrefix {
			t.Errorf("Stat(%q) = %+v, want key %q, size %d, not a prefix", key, info, key, n)
		}
		if info.ETag == "" {
			t.Errorf("Stat(%q): empty ETag", key)
		}
		if info.ModTime.IsZero() {
			t.Errorf("Stat(%q): zero ModTime", key)
		}
	}
}

func testOverwrite(t *testing.T, s store.Store) {
	const key = "over/write"
	mustPut(t, s, key, []byte("first"))
	first := mustStat(t, s, key)
	second := data(7, 4096)
	mustPut(t, s, key, second)
	mustGet(t, s, key, second)
	info := mustStat(t, s, key)
	if info.Size != int64(len(second)) {
		t.Errorf("Stat after overwrite: size %d, want %d", info.Size, len(second))
	}
	if info.ETag == first.ETag {
		t.Errorf("ETag %q unchanged by an overwrite with other content", info.ETag)
	}
	mustPut(t, s, key, second) // idempotent
	mustGet(t, s, key, second)
	wantList(t, s, store.ListOptions{Prefix: "over/"}, []string{key})
}

func testMissing(t *testing.T, s store.Store) {
	for _, key := range []string{"missing", "no/such/dir/key"} {
		wantNotFound(t, s, key)
		if err := s.Delete(t.Context(), key); err != nil {
			t.Errorf("Delete(%q) of a missing key: %v, want nil", key, err)
		}
	}
	_, err := s.Get(t.Context(), "missing")
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Get error %q does not name the key", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "d/x/y", []byte("y"))
	mustPut(t, s, "d/z", []byte("z"))
	if err := s.Delete(ctx, "d/x/y"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, s, "d/x/y")
	wantList(t, s, store.ListOptions{}, []string{"d/z"})
	wantList(t, s, store.ListOptions{Delimiter: "/", Prefix: "d/"}, []string{"d/z"})
	if err := s.Delete(ctx, "d/x/y"); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	mustPut(t, s, "d/x/y", []byte("again"))
	mustGet(t, s, "d/x/y", []byte("again"))
	for _, k := range []string{"d/x/y", "d/z"} {
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
	}
	wantList(t, s, store.ListOptions{}, nil)
}

// testPrefixIsNotAnObject: "p" is no object when only "p/q" exists.
func testPrefixIsNotAnObject(t *testing.T, s store.Store) {
	mustPut(t, s, "p/q", []byte("q"))
	wantNotFound(t, s, "p")
	if err := s.Delete(t.Context(), "p"); err != nil {
		t.Errorf("Delete(%q) of a prefix: %v, want nil", "p", err)
	}
	mustGet(t, s, "p/q", []byte("q"))
}

func testInvalidKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys := []string{"", "/abs", "..", ".", "a/../b", "a/./b", "../up", "a\\b", "a\x00b",
		"a//b", "a/", "\xff\xfe", "a\nb", strings.Repeat("k", store.MaxKeyLen+1)}
	for _, key := range keys {
		if err := s.Put(ctx, key, []byte("x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, opts := range []store.ListOptions{{Delimiter: ","}, {Limit: -1}, {Prefix: "a\x00"}} {
		err := s.List(ctx, opts, func(store.ObjectInfo) error { return nil })
		if !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%+v) error = %v, want ErrInvalidKey", opts, err)
		}
	}
	wantList(t, s, store.ListOptions{}, nil)
}

// testSpecialKeys: characters that need escaping in URLs, XML or shells.
func testSpecialKeys(t *testing.T, s store.Store) {
	keys := []string{"sp/a b", "sp/ü", "sp/a+b", "sp/a%20b", "sp/a?b#c", "sp/a=b&c;d",
		"sp/~t", "sp/(p)[q]{r}", "sp/'q'\"", "sp/*star", "sp/日本/語", "sp/<x>", "sp/.dot", "sp/...",
		"sp/" + strings.Repeat("long", 50)}
	for i, k := range keys {
		mustPut(t, s, k, data(uint64(i), i))
	}
	for i, k := range keys {
		mustGet(t, s, k, data(uint64(i), i))
	}
	wantList(t, s, store.ListOptions{Prefix: "sp/"}, sorted(keys))
}

func testNoSecrets(t *testing.T, s store.Store, secrets []string) {
	name := s.String()
	if name == "" {
		t.Error("String() is empty")
	}
	_, getErr := s.Get(t.Context(), "missing/key")
	_, rangeErr := s.GetRange(t.Context(), "missing/key", 0, 1)
	msgs := []string{name, fmt.Sprint(getErr), fmt.Sprint(rangeErr)}
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, m := range msgs {
			if strings.Contains(m, secret) {
				t.Errorf("%q contains a secret", m)
			}
		}
	}
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	const n, workers = 300, 16
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("conc/%02d/%04d", i%7, i)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := s.Put(t.Context(), keys[i], []byte(keys[i])); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put: %v", err)
	}
	wantList(t, s, store.ListOptions{}, sorted(keys))
	for _, i := range []int{0, n / 2, n - 1} {
		mustGet(t, s, keys[i], []byte(keys[i]))
	}
}

func testConcurrentOverwrites(t *testing.T, s store.Store) {
	const key, writers = "race/key", 12
	values := make(map[string]bool)
	var wg sync.WaitGroup
	for i := range writers {
		v := fmt.Sprintf("value-%d-%s", i, data(uint64(i), 100))
		values[v] = true
		wg.Go(func() {
			if err := s.Put(t.Context(), key, []byte(v)); err != nil {
				t.Errorf("concurrent Put: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !values[string(got)] {
		t.Fatalf("Get after concurrent Puts = %q, not one of the written values", got)
	}
	wantList(t, s, store.ListOptions{}, []string{key})
}

func testCanceledContext(t *testing.T, s store.Store) {
	mustPut(t, s, "ctx/key", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", op, err)
		}
	}
	check("Put", s.Put(ctx, "ctx/other", []byte("x")))
	_, err := s.Get(ctx, "ctx/key")
	check("Get", err)
	_, err = s.GetRange(ctx, "ctx/key", 0, 1)
	check("GetRange", err)
	_, err = s.Stat(ctx, "ctx/key")
	check("Stat", err)
	check("Delete", s.Delete(ctx, "ctx/key"))
	check("List", s.List(ctx, store.ListOptions{}, func(store.ObjectInfo) error { return nil }))
	mustGet(t, s, "ctx/key", []byte("x"))
}
