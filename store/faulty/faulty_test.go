package faulty_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/faulty"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/store/storetest"
)

func newStore(t *testing.T) (*faulty.Store, *file.Store) {
	t.Helper()
	inner, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return faulty.New(inner), inner
}

// Without rules the wrapper is transparent.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { s, _ := newStore(t); return s })
}

var errBoom = errors.New("boom")

func TestFailAllAndHeal(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	s.Fail(errBoom)
	checks := map[faulty.Op]error{
		faulty.Put:    s.Put(ctx, "k", nil),
		faulty.Delete: s.Delete(ctx, "k"),
		faulty.List:   s.List(ctx, store.ListOptions{}, func(store.ObjectInfo) error { return nil }),
	}
	_, checks[faulty.Get] = s.Get(ctx, "k")
	_, checks[faulty.Stat] = s.Stat(ctx, "k")
	_, checks[faulty.GetRange] = s.GetRange(ctx, "k", 0, 1)
	_, _, checks[faulty.GetWithInfo] = s.GetWithInfo(ctx, "k")
	_, checks[faulty.PutIf] = s.PutIf(ctx, "k", nil, store.Condition{IfNoneMatch: true})
	for op, err := range checks {
		if !errors.Is(err, errBoom) {
			t.Errorf("%s: %v, want boom", op, err)
		}
		if s.Calls(op) != 1 || s.Failures(op) != 1 {
			t.Errorf("%s: %d calls, %d failures; want 1, 1", op, s.Calls(op), s.Failures(op))
		}
	}
	s.Heal()
	if err := s.Put(ctx, "k", nil); err != nil {
		t.Errorf("Put after Heal: %v", err)
	}
	if s.Calls(faulty.Put) != 2 || s.Failures(faulty.Put) != 1 {
		t.Errorf("Put counts %d/%d, want 2/1", s.Calls(faulty.Put), s.Failures(faulty.Put))
	}
	s.ResetCounts()
	if s.Calls(faulty.Put) != 0 {
		t.Error("ResetCounts left calls")
	}
}

func TestFailOnlyPutsUnderPrefix(t *testing.T) {
	ctx := context.Background()
	s, inner := newStore(t)
	s.FailPrefix(errBoom, "chunks/", faulty.Put)
	if err := s.Put(ctx, "chunks/a", nil); !errors.Is(err, errBoom) {
		t.Errorf("Put chunks/a: %v, want boom", err)
	}
	if _, err := inner.Stat(ctx, "chunks/a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed Put reached the inner store: %v", err)
	}
	if err := s.Put(ctx, "sessions/a", nil); err != nil {
		t.Errorf("Put outside the prefix: %v", err)
	}
	if _, err := s.Get(ctx, "sessions/a"); err != nil {
		t.Errorf("Get: %v", err)
	}
}

func TestSkipTimesAfter(t *testing.T) {
	ctx := context.Background()
	s, inner := newStore(t)
	remove := s.Inject(faulty.Rule{Err: errBoom, Ops: []faulty.Op{faulty.Put}, Skip: 2, Times: 1, After: true})
	var errs []error
	for _, k := range []string{"a", "b", "c", "d"} {
		errs = append(errs, s.Put(ctx, k, []byte(k)))
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], errBoom) || errs[3] != nil {
		t.Errorf("Put errors = %v, want only the third to fail", errs)
	}
	// After: the failed Put landed anyway.
	if b, err := inner.Get(ctx, "c"); err != nil || string(b) != "c" {
		t.Errorf("object of the failed-after Put: %q, %v", b, err)
	}
	remove()
	remove() // idempotent
}

// Rules for GetRange and for Get match only their own operation, and a
// ranged read can fail after reaching the store.
func TestGetRangeRules(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.Put(ctx, "packs/p", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	remove := s.Inject(faulty.Rule{Err: errBoom, Ops: []faulty.Op{faulty.GetRange}, Prefix: "packs/", Times: 1})
	if _, err := s.Get(ctx, "packs/p"); err != nil {
		t.Errorf("Get under a GetRange rule: %v", err)
	}
	if _, err := s.GetRange(ctx, "packs/p", 2, 3); !errors.Is(err, errBoom) {
		t.Errorf("GetRange: %v, want boom", err)
	}
	if b, err := s.GetRange(ctx, "packs/p", 2, 3); err != nil || string(b) != "234" {
		t.Errorf("GetRange after the rule retired = %q, %v", b, err)
	}
	remove()
	s.Fail(errBoom, faulty.Get)
	if b, err := s.GetRange(ctx, "packs/p", 0, 1); err != nil || string(b) != "0" {
		t.Errorf("GetRange under a Get rule = %q, %v", b, err)
	}
	s.Heal()
	s.Inject(faulty.Rule{Err: errBoom, Ops: []faulty.Op{faulty.GetRange}, After: true})
	if b, err := s.GetRange(ctx, "packs/p", 0, 1); !errors.Is(err, errBoom) || b != nil {
		t.Errorf("GetRange failing after = %q, %v; want no bytes, boom", b, err)
	}
	// The inner store's own error comes first.
	if _, err := s.GetRange(ctx, "packs/p", 9, 2); !errors.Is(err, store.ErrInvalidRange) {
		t.Errorf("GetRange beyond the end failing after = %v, want ErrInvalidRange", err)
	}
	if s.Calls(faulty.GetRange) != 5 || s.Failures(faulty.GetRange) != 3 || s.Calls(faulty.Get) != 1 {
		t.Errorf("GetRange %d calls, %d failures, Get %d calls; want 5, 3, 1",
			s.Calls(faulty.GetRange), s.Failures(faulty.GetRange), s.Calls(faulty.Get))
	}
}

func TestListPrefixMatching(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	s.FailPrefix(errBoom, "sessions/x/", faulty.List)
	list := func(prefix string) error {
		return s.List(ctx, store.ListOptions{Prefix: prefix}, func(store.ObjectInfo) error { return nil })
	}
	for prefix, fails := range map[string]bool{"": true, "sessions/": true, "sessions/x/m": true, "chunks/": false} {
		if err := list(prefix); errors.Is(err, errBoom) != fails {
			t.Errorf("List(%q): %v, want failure %v", prefix, err, fails)
		}
	}
}
