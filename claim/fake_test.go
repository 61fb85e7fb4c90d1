package claim_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// timeline is fake time shared by the clocks of a test: it moves only when
// the test advances it, and fires the timers that fall due.
type timeline struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newTimeline() *timeline {
	return &timeline{now: time.Date(2026, 1, 12, 15, 34, 0, 0, time.UTC)}
}

// clock is one server's view of a timeline, skew ahead of it.
type clock struct {
	tl   *timeline
	skew time.Duration
}

func (c clock) Now() time.Time {
	c.tl.mu.Lock()
	defer c.tl.mu.Unlock()
	return c.tl.now.Add(c.skew)
}

func (c clock) After(d time.Duration) <-chan time.Time {
	c.tl.mu.Lock()
	defer c.tl.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.tl.now.Add(c.skew)
		return ch
	}
	c.tl.waiters = append(c.tl.waiters, waiter{at: c.tl.now.Add(d), ch: ch})
	return ch
}

// advance moves time on by d and fires the timers due.
func (tl *timeline) advance(d time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.now = tl.now.Add(d)
	kept := tl.waiters[:0]
	for _, w := range tl.waiters {
		if w.at.After(tl.now) {
			kept = append(kept, w)
		} else {
			w.ch <- tl.now
		}
	}
	tl.waiters = kept
}

func (tl *timeline) pending() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.waiters)
}

// settle waits until n timers are pending: every goroutine driven by the
// timeline has done its work for the current time and waits again.
func (tl *timeline) settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for tl.pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("timeline: %d timers pending after 20s, want %d", tl.pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// logs collects a logger's output.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) contains(s string) bool { return strings.Contains(l.String(), s) }

func (l *logs) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
