package counting_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/counting"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/store/storetest"
)

func newStore(t *testing.T) *counting.Store {
	t.Helper()
	inner, err := file.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return counting.New(inner)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func TestCounts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := s.Put(ctx, "k/"+string(rune('a'+i)), make([]byte, 100)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	before := s.Snapshot()
	if _, err := s.Get(ctx, "k/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, "k/b"); err != nil {
		t.Fatal(err)
	}
	if err := s.List(ctx, store.ListOptions{}, func(store.ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k/c"); err != nil {
		t.Fatal(err)
	}
	// Ranged GETs are their own kind, not Gets.
	if _, err := s.GetRange(ctx, "k/d", 10, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRange(ctx, "k/d", 90, 30); !errors.Is(err, store.ErrInvalidRange) {
		t.Fatal(err)
	}
	got := s.Snapshot()
	want := counting.Counts{Puts: 10, Gets: 2, RangeGets: 2, Stats: 1, Lists: 1, Deletes: 1, Listed: 10, BytesPut: 1000, BytesGot: 130, Errors: 2}
	if got != want {
		t.Errorf("Snapshot() = %+v, want %+v", got, want)
	}
	if d := got.Sub(before); d.Puts != 0 || d.Gets != 2 || d.RangeGets != 2 || d.Requests() != 7 {
		t.Errorf("Sub = %+v, want 2 gets, 2 ranged gets, 7 requests", d)
	}
	s.Reset()
	if s.Snapshot() != (counting.Counts{}) {
		t.Errorf("Reset left %+v", s.Snapshot())
	}
}
