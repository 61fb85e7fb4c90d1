package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

// The conditional-write part of the suite: the claim semantics a writer
// lease (package claim) is built on.

func putIf(t *testing.T, s store.Store, key string, b []byte, cond store.Condition) string {
	t.Helper()
	tag, err := s.PutIf(t.Context(), key, b, cond)
	if err != nil {
		t.Fatalf("PutIf(%q, %s): %v", key, cond, err)
	}
	if tag == "" {
		t.Fatalf("PutIf(%q, %s) returned an empty ETag", key, cond)
	}
	return tag
}

func wantPreconditionFailed(t *testing.T, s store.Store, key string, b []byte, cond store.Condition) {
	t.Helper()
	tag, err := s.PutIf(t.Context(), key, b, cond)
	if !errors.Is(err, store.ErrPreconditionFailed) {
		t.Fatalf("PutIf(%q, %s) = %q, %v; want ErrPreconditionFailed", key, cond, tag, err)
	}
	if !store.IsPermanent(err) {
		t.Errorf("PutIf(%q, %s) error %v is not permanent", key, cond, err)
	}
}

// mustGetWithInfo reads key and checks that the data is want and that the
// ETag is tag and agrees with Stat and List.
func mustGetWithInfo(t *testing.T, s store.Store, key string, want []byte, tag string) {
	t.Helper()
	got, info, err := s.GetWithInfo(t.Context(), key)
	if err != nil {
		t.Fatalf("GetWithInfo(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("GetWithInfo(%q) = %q, want %q", key, got, want)
	}
	if info.Key != key || info.Size != int64(len(want)) || info.ETag != tag || info.ModTime.IsZero() || info.IsPrefix {
		t.Errorf("GetWithInfo(%q) info = %+v, want key %q, size %d, ETag %q, a ModTime", key, info, key, len(want), tag)
	}
	if st := mustStat(t, s, key); st.ETag != tag {
		t.Errorf("Stat(%q) ETag = %q, PutIf returned %q", key, st.ETag, tag)
	}
	err = s.List(t.Context(), store.ListOptions{Prefix: key}, func(o store.ObjectInfo) error {
		if o.Key == key && o.ETag != tag {
			t.Errorf("List ETag of %q = %q, PutIf returned %q", key, o.ETag, tag)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", key, err)
	}
}

func testGetWithInfo(t *testing.T, s store.Store) {
	if _, _, err := s.GetWithInfo(t.Context(), "gwi/missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetWithInfo of a missing key: %v, want ErrNotFound", err)
	}
	mustPut(t, s, "gwi/p/q", []byte("q"))
	if _, _, err := s.GetWithInfo(t.Context(), "gwi/p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetWithInfo of a prefix: %v, want ErrNotFound", err)
	}
	for i, n := range []int{0, 5, 300 << 10} {
		key := fmt.Sprintf("gwi/size-%d", n)
		want := data(uint64(100+i), n)
		mustPut(t, s, key, want)
		mustGetWithInfo(t, s, key, want, mustStat(t, s, key).ETag)
	}
}

func testPutIfNoneMatch(t *testing.T, s store.Store) {
	const key = "claim/none-match"
	create := store.Condition{IfNoneMatch: true}
	in := []byte("first")
	tag := putIf(t, s, key, in, create)
	copy(in, "XXXXX") // the store must not keep the caller's slice
	mustGetWithInfo(t, s, key, []byte("first"), tag)
	wantPreconditionFailed(t, s, key, []byte("second"), create)
	mustGetWithInfo(t, s, key, []byte("first"), tag)

	mustPut(t, s, "claim/plain", []byte("plain"))
	wantPreconditionFailed(t, s, "claim/plain", []byte("x"), create)
	mustGet(t, s, "claim/plain", []byte("plain"))

	// After a Delete the key can be created again.
	if err := s.Delete(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	tag = putIf(t, s, key, []byte("again"), create)
	mustGetWithInfo(t, s, key, []byte("again"), tag)
}

func testPutIfMatch(t *testing.T, s store.Store) {
	const key = "claim/match"
	wantPreconditionFailed(t, s, key, []byte("x"), store.Condition{IfMatch: "0123456789abcdef"})
	wantNotFound(t, s, key)

	// A chain of updates, each guarded by the ETag of the one before, as a
	// lease renews: every ETag is new and every earlier one is refused.
	tags := []string{putIf(t, s, key, []byte("v0"), store.Condition{IfNoneMatch: true})}
	for i := 1; i <= 5; i++ {
		v := fmt.Appendf(nil, "v%d", i)
		tag := putIf(t, s, key, v, store.Condition{IfMatch: tags[len(tags)-1]})
		for _, old := range tags {
			if tag == old {
				t.Fatalf("update %d returned ETag %q again", i, tag)
			}
		}
		tags = append(tags, tag)
		mustGetWithInfo(t, s, key, v, tag)
	}
	for _, stale := range tags[:len(tags)-1] {
		wantPreconditionFailed(t, s, key, []byte("stale"), store.Condition{IfMatch: stale})
	}
	mustGet(t, s, key, []byte("v5"))

	// An unconditional write changes the ETag: the old one is refused.
	mustPut(t, s, key, []byte("overwritten"))
	wantPreconditionFailed(t, s, key, []byte("late"), store.Condition{IfMatch: tags[len(tags)-1]})
	mustGet(t, s, key, []byte("overwritten"))
	tag := putIf(t, s, key, []byte("after"), store.Condition{IfMatch: mustStat(t, s, key).ETag})
	mustGetWithInfo(t, s, key, []byte("after"), tag)
}

func testPutIfInvalid(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, cond := range []store.Condition{{}, {IfNoneMatch: true, IfMatch: "abc"}} {
		_, err := s.PutIf(ctx, "claim/invalid", []byte("x"), cond)
		if !errors.Is(err, store.ErrInvalidCondition) {
			t.Errorf("PutIf with condition %+v: %v, want ErrInvalidCondition", cond, err)
		}
	}
	for _, key := range []string{"", "/abs", "a/../b", "a\x00b", "a//b"} {
		if _, err := s.PutIf(ctx, key, []byte("x"), store.Condition{IfNoneMatch: true}); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("PutIf(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, _, err := s.GetWithInfo(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("GetWithInfo(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	wantList(t, s, store.ListOptions{}, nil)

	tag := putIf(t, s, "claim/ctx", []byte("x"), store.Condition{IfNoneMatch: true})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PutIf(cctx, "claim/ctx", []byte("y"), store.Condition{IfMatch: tag}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutIf with a cancelled context: %v, want context.Canceled", err)
	}
	if _, _, err := s.GetWithInfo(cctx, "claim/ctx"); !errors.Is(err, context.Canceled) {
		t.Errorf("GetWithInfo with a cancelled context: %v, want context.Canceled", err)
	}
	mustGetWithInfo(t, s, "claim/ctx", []byte("x"), tag)
}

// race runs n writers of PutIf(key, value-i, cond) at once and requires
// exactly one to succeed, every other to fail with ErrPreconditionFailed,
// and the key to hold the winner's value under the ETag it got.
func race(t *testing.T, s store.Store, key string, n int, cond store.Condition) {
	t.Helper()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []int
		tags    = make([]string, n)
		start   = make(chan struct{})
	)
	value := func(i int) []byte { return fmt.Appendf(nil, "writer-%d-%s", i, data(uint64(i), 64)) }
	for i := range n {
		wg.Go(func() {
			<-start
			tag, err := s.PutIf(t.Context(), key, value(i), cond)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
				tags[i] = tag
			case !errors.Is(err, store.ErrPreconditionFailed):
				t.Errorf("writer %d: %v, want success or ErrPreconditionFailed", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d concurrent PutIf(%s): %d succeeded (%v), want exactly 1", n, cond, len(winners), winners)
	}
	w := winners[0]
	mustGetWithInfo(t, s, key, value(w), tags[w])
}

func testPutIfConcurrentCreate(t *testing.T, s store.Store) {
	race(t, s, "claim/race-create", 12, store.Condition{IfNoneMatch: true})
}

func testPutIfConcurrentUpdate(t *testing.T, s store.Store) {
	const key = "claim/race-update"
	tag := putIf(t, s, key, []byte("held"), store.Condition{IfNoneMatch: true})
	race(t, s, key, 12, store.Condition{IfMatch: tag})
	wantPreconditionFailed(t, s, key, []byte("late"), store.Condition{IfMatch: tag})
}
