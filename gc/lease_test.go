package gc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store/mem"
)

// The lease is renewed once half of it is gone, refuses a second holder
// until it expires, and a run that lost it (taken over after expiry, or
// expired itself) stops at its next check.
func TestLease(t *testing.T) {
	ctx := context.Background()
	st := mem.New(mem.Options{})
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	a, err := acquireLease(ctx, st, clk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acquireLease(ctx, st, clk); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second holder: %v", err)
	}
	tag := a.etag
	clk.Advance(20 * time.Minute)
	if err := a.check(ctx); err != nil || a.etag != tag {
		t.Fatalf("check with 40 minutes left: %v, renewed %v", err, a.etag != tag)
	}
	clk.Advance(20 * time.Minute)
	if err := a.check(ctx); err != nil || a.etag == tag {
		t.Fatalf("check with 20 minutes left: %v, renewed %v", err, a.etag != tag)
	}
	clk.Advance(LeaseTTL + time.Minute) // a stalls past its lease; b takes it over
	b, err := acquireLease(ctx, st, clk)
	if err != nil {
		t.Fatalf("taking over an expired lease: %v", err)
	}
	if err := a.check(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("the stalled run's check: %v", err)
	}
	a.release(ctx) // not a's any more: stays
	if _, err := acquireLease(ctx, st, clk); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("after the stalled run's release: %v", err)
	}
	b.release(ctx)
	if _, err := acquireLease(ctx, st, clk); err != nil {
		t.Fatalf("after release: %v", err)
	}
}
