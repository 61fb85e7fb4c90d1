// Package clock is pitr's one source of time. Every package that stamps a
// time or waits takes a Clock; production passes Real(), tests a Fake they
// advance by hand, so no test sleeps to wait for a timer. The linter bans
// time.Now, time.Since, time.After, timers and tickers outside this
// package.
//
// The interface and the fake are github.com/jonboulle/clockwork's: a fake
// that advances, fires the timers it passes, and lets a test wait until
// the code under test is blocked on it (BlockUntilContext).
package clock

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// Clock tells the time and makes timers.
type Clock = clockwork.Clock

// Timer and Ticker are the clock's timers.
type (
	Timer  = clockwork.Timer
	Ticker = clockwork.Ticker
)

// Fake is a clock that moves only when Advance is called.
type Fake = clockwork.FakeClock

// Real returns the wall clock.
func Real() Clock { return clockwork.NewRealClock() }

// NewFake returns a fake clock stopped at t.
func NewFake(t time.Time) *Fake { return clockwork.NewFakeClockAt(t) }

// Or returns c, or the wall clock when c is nil: what a Config's zero
// value means.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Deadline returns the wall-clock time d from now, for the deadlines of
// connections and files, which the operating system measures in real time
// whatever clock the caller was given.
func Deadline(d time.Duration) time.Time { return time.Now().Add(d) }
