package claim_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
)

// newTimeline returns fake time shared by the servers of a test: it moves
// only when the test advances it, and fires the timers that fall due.
func newTimeline() *clock.Fake {
	return clock.NewFake(time.Date(2026, 1, 12, 15, 34, 0, 0, time.UTC))
}

// skewed is one server's view of a timeline, skew ahead of it; its timers
// are the timeline's.
type skewed struct {
	*clock.Fake
	skew time.Duration
}

func (c skewed) Now() time.Time                  { return c.Fake.Now().Add(c.skew) }
func (c skewed) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c skewed) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

// settle waits until n timers are pending on tl: every goroutine driven by
// the timeline has done its work for the current time and waits again.
func settle(t *testing.T, tl *clock.Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := tl.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("timeline: fewer than %d timers pending after 20s: %v", n, err)
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
