package backoff

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
)

// instant is a clock whose After fires at once and records the delays
// asked for.
type instant struct {
	*clock.Fake
	delays []time.Duration
}

func newInstant() *instant { return &instant{Fake: clock.NewFake(time.Unix(0, 0))} }

func (i *instant) After(d time.Duration) <-chan time.Time {
	i.delays = append(i.delays, d)
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestDo(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	transient := errors.New("connection refused")
	cases := []struct {
		name      string
		errs      []error // fn's results, in order; then nil
		wantErr   error
		wantCalls int
	}{
		{"success at once", nil, nil, 1},
		{"transient errors are retried", []error{transient, transient}, nil, 3},
		{"a permanent store error ends the wait", []error{transient, store.ErrBadCredentials}, store.ErrBadCredentials, 2},
		{"a marked error ends the wait, unwrapped", []error{Permanent(io.EOF)}, io.EOF, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{Min: 100 * time.Millisecond, Max: 300 * time.Millisecond, Clock: newInstant()}
			calls := 0
			err := p.Do(context.Background(), log, "test", func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Do = %v, want %v", err, tc.wantErr)
			}
			var pe permanentError
			if errors.As(err, &pe) {
				t.Fatalf("Do returned the Permanent wrapper: %v", err)
			}
			if calls != tc.wantCalls {
				t.Fatalf("fn called %d times, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// Delays double up to Max, each jittered into its upper half.
func TestDoDelays(t *testing.T) {
	clk := newInstant()
	p := Policy{Min: 100 * time.Millisecond, Max: 400 * time.Millisecond, Clock: clk}
	n := 0
	_ = p.Do(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "test", func() error {
		if n++; n <= 5 {
			return errors.New("down")
		}
		return nil
	})
	bases := []time.Duration{100, 200, 400, 400, 400}
	if len(clk.delays) != len(bases) {
		t.Fatalf("%d delays, want %d", len(clk.delays), len(bases))
	}
	for i, d := range clk.delays {
		b := bases[i] * time.Millisecond
		if d < b/2 || d > b {
			t.Errorf("delay %d = %v, want within [%v, %v]", i, d, b/2, b)
		}
	}
}

// A canceled context ends the wait with both errors.
func TestDoCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	down := errors.New("down")
	never := clock.NewFake(time.Unix(0, 0)) // never advanced
	err := Policy{Clock: never}.Do(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), "test", func() error { return down })
	if !errors.Is(err, down) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v, want both the last error and context.Canceled", err)
	}
}

// Delays double from Min to Max, jittered into their upper half, and start
// again at Min after Reset.
func TestDelays(t *testing.T) {
	d := Policy{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}.Delays()
	check := func(bases ...time.Duration) {
		t.Helper()
		for i, b := range bases {
			b *= time.Millisecond
			if got := d.Next(); got < b/2 || got > b {
				t.Errorf("wait %d = %v, want within [%v, %v]", i, got, b/2, b)
			}
		}
	}
	check(100, 200, 400, 800, 800)
	d.Reset()
	check(100, 200)
}
