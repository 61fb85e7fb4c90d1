package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
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
