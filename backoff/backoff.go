// Package backoff is pitr's retry policy for waiting on a store: attempts
// spaced by a delay that doubles from Min to Max, with full jitter in its
// upper half so that servers waiting on one store do not poll in lockstep,
// each retry logged. Errors that retrying cannot fix end the wait at once.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
)

// Policy spaces retries. The zero value means 1 s doubling to 30 s.
type Policy struct {
	Min, Max time.Duration
	// Clock times the waits; the wall clock when nil (tests pass a fake).
	Clock clock.Clock
}

// permanentError marks an error Do must not retry.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// Permanent marks err as one Do returns at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Retryable reports whether Do retries err: not a store error retrying
// cannot fix (store.IsPermanent), not marked Permanent, not a cancellation.
func Retryable(err error) bool {
	var p permanentError
	return !errors.As(err, &p) && !store.IsPermanent(err) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Do calls fn until it succeeds or fails with an error that is not
// Retryable, logging each retry with what; it returns fn's last error
// (unwrapped from Permanent), or ctx's error joined to it once ctx ends.
func (p Policy) Do(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	p = p.withDefaults()
	delays := p.Delays()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if !Retryable(err) {
			var pe permanentError
			if errors.As(err, &pe) {
				return pe.error
			}
			return err
		}
		d := delays.Next()
		log.Warn(what+"; retrying", slog.Duration("in", d.Round(time.Millisecond)), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-p.Clock.After(d):
		}
	}
}

// Delays is the policy's sequence of waits between attempts: Min,
// doubling up to Max, each jittered into its upper half (Jitter). Every
// retry loop in pitr waits by one: Do, the saver's retries of failed
// saves, the claim's waits on a failing store.
type Delays struct {
	p    Policy
	base time.Duration // the next wait before jitter; 0: Min
}

// Delays returns the policy's waits, starting at Min.
func (p Policy) Delays() *Delays { return &Delays{p: p.withDefaults()} }

// Next returns the next wait, jittered.
func (d *Delays) Next() time.Duration {
	if d.base == 0 {
		d.base = d.p.Min
	}
	w := d.base
	d.base = min(2*d.base, d.p.Max)
	return Jitter(w)
}

// Reset starts the waits again at Min (after a success).
func (d *Delays) Reset() { d.base = 0 }

func (p Policy) withDefaults() Policy {
	if p.Min <= 0 {
		p.Min = time.Second
	}
	if p.Max < p.Min {
		p.Max = max(30*time.Second, p.Min)
	}
	p.Clock = clock.Or(p.Clock)
	return p
}

// Jitter picks a delay in [d/2, d] at random, so that processes waiting on
// one thing do not all ask at the same instant.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
