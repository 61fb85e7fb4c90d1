package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
)

const (
	serverPW = "server-secret"
	adminPW  = "admin-secret"
)

// fakeSaver records every call and answers what the test set.
type fakeSaver struct {
	mu          sync.Mutex
	requests    []string
	reqCh       chan string
	saveReasons []string
	result      replicate.Result
	saveErr     error
	status      replicate.Status
	saves       []replicate.SaveSummary
	savesErr    error
	panicStatus bool
}

func newFakeSaver() *fakeSaver { return &fakeSaver{reqCh: make(chan string, 4096)} }

func (f *fakeSaver) Save(_ context.Context, reason string) (replicate.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saveReasons = append(f.saveReasons, reason)
	return f.result, f.saveErr
}

func (f *fakeSaver) Request(reason string) {
	f.mu.Lock()
	f.requests = append(f.requests, reason)
	f.mu.Unlock()
	f.reqCh <- reason
}

func (f *fakeSaver) Status() replicate.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicStatus {
		panic("fake saver: status exploded")
	}
	return f.status
}

func (f *fakeSaver) Saves(context.Context) ([]replicate.SaveSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saves, f.savesErr
}

func (f *fakeSaver) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// waitRequest waits for the saver to be asked for a save with reason.
func (f *fakeSaver) waitRequest(t *testing.T, reason string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case got := <-f.reqCh:
			if got == reason {
				return
			}
		case <-deadline:
			t.Fatalf("saver never got Request(%q); got %q", reason, f.Requests())
		}
	}
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	t     *testing.T
	sess  *session.Session
	saver *fakeSaver
	srv   *Server
	logs  *syncBuffer
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, sess: session.New(), saver: newFakeSaver(), logs: &syncBuffer{}}
	if cfg.SessionName == "" {
		cfg.SessionName = "test"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = New(e.sess, e.saver, cfg)
	return e
}

// activeEnv returns an env with both passwords set and an active session.
func activeEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, Config{ServerPassword: serverPW, AdminPassword: adminPW})
	if err := e.sess.Init(); err != nil {
		t.Fatal(err)
	}
	return e
}

type resp struct {
	code int
	hdr  http.Header
	body []byte
}

// do serves one request. hdr is key, value pairs; "admin", "user" and
// "anon" are shortcuts for the Authorization header.
func (e *env) do(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i < len(hdr); i++ {
		switch hdr[i] {
		case "admin":
			req.Header.Set("Authorization", "Bearer "+adminPW)
		case "user":
			req.Header.Set("Authorization", "Bearer "+serverPW)
		case "anon":
		default:
			req.Header.Add(hdr[i], hdr[i+1])
			i++
		}
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return resp{code: rec.Code, hdr: rec.Header(), body: rec.Body.Bytes()}
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errMsg asserts a JSON error body and returns its message.
func (r resp) errMsg(t *testing.T) string {
	t.Helper()
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q, body %s", ct, r.body)
	}
	var b struct {
		Error string `json:"error"`
	}
	r.decode(t, &b)
	if b.Error == "" {
		t.Fatalf("error body without message: %s", r.body)
	}
	return b.Error
}

func (r resp) want(t *testing.T, code int) resp {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body %s", r.code, code, r.body)
	}
	return r
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustPut(t *testing.T, s *session.Session, a session.Actor, id string, in session.NodeInput) {
	t.Helper()
	if _, err := s.Put(a, id, in); err != nil {
		t.Fatal(err)
	}
}
