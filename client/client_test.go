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
