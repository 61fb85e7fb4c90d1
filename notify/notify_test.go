package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hook records what it receives.
type hook struct {
	mu     sync.Mutex
	events []string
	pings  []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Method == http.MethodPost {
		var e Event
		_ = json.NewDecoder(r.Body).Decode(&e)
		h.events = append(h.events, e.Event)
		return
	}
	h.pings = append(h.pings, r.URL.Path)
}

func (h *hook) got() ([]string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string{}, h.events...), append([]string{}, h.pings...)
}

func TestEventsAndPings(t *testing.T) {
	h := &hook{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	n, err := New(Config{URLs: []string{srv.URL + "/hook"}, PingURL: srv.URL + "/ping", PingEvery: time.Minute, RPOAlert: 5 * time.Minute,
		Session: "s", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(), Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tick := make(chan time.Time)
	var umu sync.Mutex
	unsavedSince := c.Now()
	go n.Run(ctx, tick, func() (time.Time, bool) { umu.Lock(); defer umu.Unlock(); return unsavedSince, true })

	down := errors.New("store down")
	n.SaveResult(nil, false) // ping
	n.SaveResult(nil, false) // within the ping interval: no ping
	c.Advance(2 * time.Minute)
	n.SaveResult(down, false) // save_failed, ping /fail
	n.SaveResult(down, false) // still failing: nothing new
	n.SaveResult(nil, false)  // save_recovered (no ping: within the interval)
	c.Advance(4 * time.Minute)
	tick <- c.Now() // unsaved for 6 min > 5: rpo_exceeded; and an idle ping (healthy, 4 min since the last)
	tick <- c.Now() // still: nothing new
	umu.Lock()
	unsavedSince = c.Now()
	umu.Unlock()
	tick <- c.Now()          // rpo_recovered
	n.SaveResult(down, true) // fenced (no ping: within the interval)
	want := []string{Fenced, RPOExceeded, RPORecovered, SaveFailed, SaveRecovered}
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, pings := h.got()
		if len(events) >= len(want) && len(pings) >= 3 {
			if events[0] != SaveFailed || events[1] != SaveRecovered {
				t.Fatalf("events %v: want save_failed, save_recovered first", events)
			}
			slices.Sort(events)
			if !slices.Equal(events, want) {
				t.Fatalf("events %v, want %v", events, want)
			}
			if !slices.Equal(pings, []string{"/ping", "/ping/fail", "/ping"}) {
				t.Fatalf("pings %v, want /ping, /ping/fail, then an idle /ping", pings)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v, pings %v; want events %v", events, pings, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f := testutil.ToFloat64(n.failures); f != 0 {
		t.Fatalf("%v notify failures", f)
	}
}

// A notify URL that is not http(s) is refused; an endpoint that fails for
// good counts as a notify failure, without blocking anything.
func TestBadURLsAndFailures(t *testing.T) {
	for _, u := range []string{"ftp://x/y", "hooks.example.com", "http://", "/path"} {
		if _, err := New(Config{URLs: []string{u}}); err == nil {
			t.Errorf("notify URL %q accepted", u)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer srv.Close()
	n, err := New(Config{URLs: []string{srv.URL}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx, nil, nil)
	n.SaveResult(nil, false)
	n.SaveResult(errors.New("down"), false)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(n.failures) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a refused notification was not counted")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
