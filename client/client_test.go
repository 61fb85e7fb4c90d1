package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The client sends the password, the user and the node as the API wants
// them, and turns error bodies into *APIError.
func TestPutAndDelete(t *testing.T) {
	var got struct {
		method, path, auth, user string
		body                     NodeInput
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path = r.Method, r.URL.EscapedPath()
		got.auth, got.user = r.Header.Get("Authorization"), r.Header.Get("X-Pitr-User")
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"node \"x\" not found"}`))
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got.body)
		_, _ = w.Write([]byte(`{"id":"a.b","type":"mesh","owner":"COMMON","deps":[],"version":4}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{Password: "pw", User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.PutNode(context.Background(), "a.b", NodeInput{Type: "mesh", Data: []byte{0, 1, 2}})
	if err != nil || n.Version != 4 {
		t.Fatalf("PutNode = %+v, %v", n, err)
	}
	if got.method != "PUT" || got.path != "/v1/nodes/a.b" || got.auth != "Bearer pw" || got.user != "ann" ||
		string(got.body.Data) != "\x00\x01\x02" || got.body.Deps == nil {
		t.Fatalf("server saw %+v", got)
	}
	err = c.DeleteNode(context.Background(), "x")
	if !IsNotFound(err) || err.Error() != `DELETE /v1/nodes/x: 404 Not Found: node "x" not found` {
		t.Fatalf("DeleteNode = %v, want a 404 APIError with the server's message", err)
	}
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:5555", "ftp://host", "http://", "://x"} {
		if _, err := New(u, Options{}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

// Reads are retried on 5xx until they succeed; edits are sent once.
func TestRetriesReadsOnly(t *testing.T) {
	var gets, puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			if gets.Add(1) < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"session":"s","state":"active","users":[],"fenced":false}`))
		default:
			puts.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"fenced"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.reads.RetryWaitMin, c.reads.RetryWaitMax = time.Millisecond, time.Millisecond
	in, err := c.Session(context.Background())
	if err != nil || in.State != "active" || gets.Load() != 3 {
		t.Fatalf("Session after two 503s: %+v %v, %d GETs; want success on the third", in, err, gets.Load())
	}
	_, err = c.PutNode(context.Background(), "n", NodeInput{Type: "t"})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Message != "fenced" || puts.Load() != 1 {
		t.Fatalf("PutNode on a 503: %v after %d PUTs; want one PUT and the server's error", err, puts.Load())
	}
}

// The stream parser never panics or loops, and every event it returns has
// JSON data.
func FuzzStreamNext(f *testing.F) {
	f.Add(": keep-alive\n\nevent: hello\ndata: {}\n\n")
	f.Add("event: x\ndata: [1,\ndata: 2]\n\nid: 3\n\n")
	f.Add("data: {oops\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		s := &Stream{body: io.NopCloser(strings.NewReader(body)), r: bufio.NewReader(strings.NewReader(body))}
		for range 1000 {
			e, err := s.Next()
			if err != nil {
				return
			}
			if !json.Valid(e.Data) {
				t.Fatalf("event %+v: data is not JSON", e)
			}
		}
		t.Fatal("more than 1000 events from a short body")
	})
}

// The calls added for the e2e tests send what the API wants and decode its
// answers: the node list, owner changes, the saves list and init.
func TestListsOwnerAndInit(t *testing.T) {
	type seen struct{ method, path, auth, user, body string }
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("X-Pitr-User"), string(b)})
		switch r.Method + " " + r.URL.EscapedPath() {
		case "GET /v1/nodes":
			_, _ = w.Write([]byte(`[{"id":"a","type":"t","owner":"COMMON","deps":[],"version":1},{"id":"b","type":"u","owner":"ann","deps":["a"],"version":3}]`))
		case "POST /v1/nodes/a%20b/owner":
			_, _ = w.Write([]byte(`{"id":"a b","type":"t","owner":"bob","deps":[],"version":2}`))
		case "GET /v1/saves":
			_, _ = w.Write([]byte(`[{"id":"s1","time":"2025-01-12T15:34:45.123Z","reason":"api","initialized":true,"node_count":2,"bytes_total":10,"bytes_uploaded":7}]`))
		case "POST /v1/session/init":
			_, _ = w.Write([]byte(`{"session":"s","state":"active","node_count":0,"users":[],"last_save":null,"last_error":null,"fenced":false}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"no endpoint"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{Password: "pw", User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	list, err := c.ListNodes(ctx)
	if err != nil || len(list) != 2 || list[1].ID != "b" || list[1].Owner != "ann" || list[1].Version != 3 || len(list[1].Deps) != 1 {
		t.Fatalf("ListNodes = %+v, %v", list, err)
	}
	n, err := c.SetOwner(ctx, "a b", "bob")
	if err != nil || n.Owner != "bob" || n.Version != 2 {
		t.Fatalf("SetOwner = %+v, %v", n, err)
	}
	saves, err := c.ListSaves(ctx)
	want := time.Date(2025, 1, 12, 15, 34, 45, 123e6, time.UTC)
	if err != nil || len(saves) != 1 || saves[0].ID != "s1" || !saves[0].Time.Equal(want) || !saves[0].Initialized ||
		saves[0].NodeCount != 2 || saves[0].BytesTotal != 10 || saves[0].BytesUploaded != 7 {
		t.Fatalf("ListSaves = %+v, %v", saves, err)
	}
	in, err := c.InitSession(ctx)
	if err != nil || in.State != "active" || in.Session != "s" {
		t.Fatalf("InitSession = %+v, %v", in, err)
	}
	if len(got) != 4 {
		t.Fatalf("server saw %d requests, want 4: %+v", len(got), got)
	}
	for _, s := range got {
		if s.auth != "Bearer pw" || s.user != "bob" {
			t.Errorf("%s %s: Authorization %q, X-Pitr-User %q", s.method, s.path, s.auth, s.user)
		}
	}
	if b := got[1].body; b != `{"owner":"bob"}` {
		t.Errorf("SetOwner sent %s", b)
	}
	if b := got[3].body; b != "" {
		t.Errorf("InitSession sent a body: %s", b)
	}
}

// The new reads are retried like every GET; the new edits are sent once.
func TestNewCallsRetryRules(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%3 != 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"busy"}`))
			return
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.reads.RetryWaitMin, c.reads.RetryWaitMax = time.Millisecond, time.Millisecond
	ctx := context.Background()
	reads := map[string]func() error{
		"ListNodes": func() error { _, err := c.ListNodes(ctx); return err },
		"ListSaves": func() error { _, err := c.ListSaves(ctx); return err },
	}
	for name, call := range reads {
		calls.Store(0)
		if err := call(); err != nil || calls.Load() != 3 {
			t.Errorf("%s after two 503s: %v after %d requests, want success on the third", name, err, calls.Load())
		}
	}
	edits := map[string]func() error{
		"SetOwner":    func() error { _, err := c.SetOwner(ctx, "n", "COMMON"); return err },
		"InitSession": func() error { _, err := c.InitSession(ctx); return err },
	}
	for name, call := range edits {
		calls.Store(0)
		var ae *APIError
		if err := call(); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Message != "busy" || calls.Load() != 1 {
			t.Errorf("%s on a 503: %v after %d requests, want the server's error after one", name, err, calls.Load())
		}
	}
}
