package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/session"
)

func nodeIn(typ string) session.NodeInput { return session.NodeInput{Type: typ} }

// sseEvent is one event (or comment) read off a stream.
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseClient is an open event stream.
type sseClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	events chan sseEvent // closed at the end of the stream
}

// openStream opens GET /v1/events?user=user on ts. It returns the response
// for non-200 statuses (body read) and a client otherwise.
func openStream(t *testing.T, baseURL, user string, hdr ...string) (*sseClient, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", baseURL+"/v1/events?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	c := &sseClient{resp: resp, cancel: cancel, events: make(chan sseEvent, 4096)}
	go c.read()
	t.Cleanup(c.close)
	return c, resp.StatusCode
}

func (c *sseClient) read() {
	defer close(c.events)
	br := bufio.NewReader(c.resp.Body)
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				c.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	_ = c.resp.Body.Close()
}

// next returns the next event matching keep, failing after 5 s or at the
// end of the stream.
func (c *sseClient) next(t *testing.T, keep func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if keep(ev) {
				return ev
			}
		case <-deadline:
			t.Fatal("timed out waiting for an event")
		}
	}
}

func named(name string) func(sseEvent) bool {
	return func(ev sseEvent) bool { return ev.event == name }
}

// waitEnd waits for the stream to end.
func (c *sseClient) waitEnd(t *testing.T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream did not end")
		}
	}
}

func TestEventsPresence(t *testing.T) {
	e := activeEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	defer e.srv.Close()
	auth := []string{"Authorization", "Bearer " + serverPW}

	c, code := openStream(t, ts.URL, "ann", auth...)
	if code != 200 {
		t.Fatalf("connect: %d", code)
	}
	if ct := c.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cc := c.resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Fatalf("Cache-Control %q", cc)
	}
	hi := c.next(t, named("hello"))
	var h hello
	if err := json.Unmarshal([]byte(hi.data), &h); err != nil {
		t.Fatal(err)
	}
	if h.User != "ann" || h.State != session.StateActive || !slices.Equal(h.Users, []string{"ann"}) || h.Session != "test" {
		t.Fatalf("hello %+v", h)
	}
	if !slices.Equal(e.sess.Users(), []string{"ann"}) {
		t.Fatalf("users %v", e.sess.Users())
	}

	// a PUT shows up on the stream
	req, _ := http.NewRequest("PUT", ts.URL+"/v1/nodes/cube", strings.NewReader(`{"type":"mesh","owner":"ann"}`))
	req.Header.Set("Authorization", "Bearer "+serverPW)
	req.Header.Set("X-Pitr-User", "ann")
	resp, err := ts.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	put := c.next(t, named(session.EventPut))
	var ev session.Event
	if err := json.Unmarshal([]byte(put.data), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Node == nil || ev.Node.ID != "cube" || ev.Node.Owner != "ann" || put.id != fmt.Sprint(ev.Seq) {
		t.Fatalf("put event %+v %+v", put, ev.Node)
	}

	// the same user twice: 409; other users are fine
	if _, code := openStream(t, ts.URL, "ann", auth...); code != http.StatusConflict {
		t.Fatalf("second stream for ann: %d", code)
	}
	bob, code := openStream(t, ts.URL, "bob", auth...)
	if code != 200 {
		t.Fatalf("bob: %d", code)
	}
	c.next(t, func(ev sseEvent) bool { return ev.event == session.EventJoin && strings.Contains(ev.data, `"bob"`) })
	bob.close()
	waitFor(t, "bob to leave", func() bool { return !slices.Contains(e.sess.Users(), "bob") })
	if got := e.saver.Requests(); len(got) != 0 {
		t.Fatalf("bob owned nothing, yet requests %v", got)
	}

	// ann disconnects: offline, her node back to COMMON, a save requested
	c.close()
	e.saver.waitRequest(t, "user_disconnect:ann")
	if users := e.sess.Users(); len(users) != 0 {
		t.Fatalf("users after disconnect %v", users)
	}
	n, err := e.sess.Get("cube")
	if err != nil || n.Owner != session.Common {
		t.Fatalf("cube after disconnect: %+v %v", n, err)
	}
	// ann may come back
	if _, code := openStream(t, ts.URL, "ann", auth...); code != 200 {
		t.Fatalf("reconnect: %d", code)
	}
}

func TestEventsBadRequests(t *testing.T) {
	e := activeEnv(t)
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	auth := []string{"Authorization", "Bearer " + serverPW}
	for _, tc := range []struct {
		query string
		hdr   []string
		want  int
	}{
		{"", auth, 400},
		{"bad%20name", auth, 400},
		{"COMMON", auth, 400},
		{"ann&user=bob", auth, 400},
		{"ann", nil, 401},
		{"ann", []string{"Authorization", "Bearer wrong"}, 401},
	} {
		if _, code := openStream(t, ts.URL, tc.query, tc.hdr...); code != tc.want {
			t.Errorf("user=%s: status %d, want %d", tc.query, code, tc.want)
		}
	}
	if len(e.sess.Users()) != 0 {
		t.Fatalf("users %v", e.sess.Users())
	}
}

func TestEventsHeartbeat(t *testing.T) {
	fake := clock.NewFake(time.Date(2025, 1, 12, 15, 34, 0, 0, time.UTC))
	e := newEnv(t, Config{Clock: fake})
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	c, _ := openStream(t, ts.URL, "ann")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.BlockUntilContext(ctx, 1); err != nil { // the stream's heartbeat ticker
		t.Fatalf("the stream never started its heartbeat: %v", err)
	}
	fake.Advance(DefaultHeartbeat)
	c.next(t, func(ev sseEvent) bool { return ev.comment })
	c.close()
	waitFor(t, "ann to leave", func() bool { return len(e.sess.Users()) == 0 })
}

func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sess.Init(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e.sess, ann, "cube", session.NodeInput{Type: "mesh", Owner: "ann"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	hs.RegisterOnShutdown(e.srv.Close)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	c, code := openStream(t, "http://"+ln.Addr().String(), "ann")
	if code != 200 {
		t.Fatalf("connect: %d", code)
	}
	c.next(t, named("hello"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an open stream: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed { //nolint:errorlint
		t.Fatalf("serve: %v", err)
	}
	c.waitEnd(t)
	// Shutdown returned after the stream's handler: ann already left
	if n, _ := e.sess.Get("cube"); n.Owner != session.Common || len(e.sess.Users()) != 0 {
		t.Fatalf("after shutdown: owner %q users %v", n.Owner, e.sess.Users())
	}
	e.saver.waitRequest(t, "user_disconnect:ann")
	// after Close, new streams are refused; other requests still served
	e.do("GET", "/v1/events?user=bob", "").want(t, http.StatusServiceUnavailable)
	e.do("GET", "/v1/nodes", "").want(t, http.StatusOK)
}

// blockingWriter blocks every write until released, like a client that
// stopped reading.
type blockingWriter struct {
	header  http.Header
	started chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	n       int
}

func (b *blockingWriter) Header() http.Header { return b.header }
func (b *blockingWriter) WriteHeader(int)     {}
func (b *blockingWriter) Flush()              {}
func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	return len(p), nil
}

func TestSlowReaderIsDropped(t *testing.T) {
	e := newEnv(t, Config{})
	if err := e.sess.Init(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e.sess, ann, "cube", session.NodeInput{Type: "mesh", Owner: "ann"})
	w := &blockingWriter{header: http.Header{}, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/events?user=ann", nil))
	}()
	select {
	case <-w.started: // joined, blocked writing hello
	case <-time.After(5 * time.Second):
		t.Fatal("stream never wrote")
	}
	for i := range 1100 { // more than a subscription buffers
		mustPut(t, e.sess, adminActor, fmt.Sprintf("n%d", i), nodeIn("t"))
	}
	close(w.release)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("slow stream was not dropped")
	}
	e.saver.waitRequest(t, "user_disconnect:ann")
	if n, _ := e.sess.Get("cube"); n.Owner != session.Common || len(e.sess.Users()) != 0 {
		t.Fatalf("after drop: owner %q users %v", n.Owner, e.sess.Users())
	}
	if !strings.Contains(e.logs.String(), "too slowly") {
		t.Fatal("drop not logged")
	}
}

// A stream outlives the http.Server's read and write timeouts.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	e := newEnv(t, Config{})
	e.srv.Heartbeat = 10 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv, ReadTimeout: 150 * time.Millisecond, WriteTimeout: 150 * time.Millisecond}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	c, code := openStream(t, "http://"+ln.Addr().String(), "ann")
	if code != 200 {
		t.Fatalf("connect: %d", code)
	}
	start := time.Now()
	for time.Since(start) < 400*time.Millisecond { // well past both timeouts
		c.next(t, func(ev sseEvent) bool { return ev.comment })
	}
	if !slices.Equal(e.sess.Users(), []string{"ann"}) {
		t.Fatalf("users %v", e.sess.Users())
	}
}
