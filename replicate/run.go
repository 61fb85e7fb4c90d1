package replicate

import (
	"context"
	"time"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/clock"
)

// Run drives automatic saves until ctx ends: Interval after the first change
// since the last save, at once on Request, and again with backoff after a
// failure. It does not make the final save; the caller does that with Save.
// Its timers run on Config.Clock.
func (s *Saver) Run(ctx context.Context) {
	r := &runner{s: s, retries: backoff.Policy{Min: min(s.cfg.RetryMin, s.cfg.RetryMax), Max: s.cfg.RetryMax, Clock: s.cfg.Clock}.Delays()}
	defer r.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.sess.Changed():
			s.noteChange()
			if r.timerC == nil {
				r.arm(s.cfg.Interval)
			}
		case reason := <-s.reqs:
			r.attempt(ctx, reason)
		case reason := <-s.retry:
			r.retryLater(ctx, reason)
		case <-r.timerC:
			r.attempt(ctx, r.timerReason())
		}
	}
}

// runner is what Run keeps between events: its one timer (the interval
// after a change, or the wait before a retry) and the retry's state.
type runner struct {
	s       *Saver
	timer   clock.Timer
	timerC  <-chan time.Time // nil while no timer is armed
	retries *backoff.Delays  // waits between retries of a failed save
	pending string           // reason of a save that failed and awaits retry
}

func (r *runner) arm(d time.Duration) {
	if r.timer == nil {
		r.timer = r.s.cfg.Clock.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	r.timerC = r.timer.Chan()
}

func (r *runner) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// attempt saves now; a failure comes back on s.retry.
func (r *runner) attempt(ctx context.Context, reason string) {
	r.timerC = nil
	if _, err := r.s.Save(ctx, reason); err != nil {
		return // Save queued the reason on s.retry
	}
	r.retries.Reset()
	r.pending = ""
	if r.s.sess.Gen() != r.s.savedGen() {
		r.arm(r.s.cfg.Interval) // changes arrived during the save
	}
}

// retryLater arms the timer for the retry of a failed save, with backoff.
func (r *runner) retryLater(ctx context.Context, reason string) {
	if ctx.Err() != nil {
		return
	}
	if r.pending == "" {
		r.pending = reason
	}
	r.arm(r.retries.Next()) // jittered: savers retrying one store do not retry in step
}

// timerReason is the reason of the save the timer starts: a failed save's
// when it is a retry.
func (r *runner) timerReason() string {
	if r.pending != "" {
		return r.pending
	}
	return "interval"
}

func (s *Saver) savedGen() uint64 {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	return s.lastGen
}
