package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/server"
	"github.com/pitr-dev/pitr/session"
)

// noSaver is a server.Saver that saves nothing.
type noSaver struct{}

func (noSaver) Save(context.Context, string) (replicate.Result, error) {
	return replicate.Result{}, nil
}
func (noSaver) Request(string)                                         {}
func (noSaver) Status() replicate.Status                               { return replicate.Status{} }
func (noSaver) Saves(context.Context) ([]replicate.SaveSummary, error) { return nil, nil }

// The stream starts with hello, then carries every change as it happens;
// closing it takes the user offline.
func TestEvents(t *testing.T) {
	sess := session.New()
	srv := httptest.NewServer(server.New(sess, noSaver{}, server.Config{SessionName: "s", AdminPassword: "adm"}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.Options{Password: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := c.Events(ctx, "ann")
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.Next()
	var hi struct{ User, Session string }
	if err != nil || e.Type != "hello" || json.Unmarshal(e.Data, &hi) != nil || hi.User != "ann" || hi.Session != "s" {
		t.Fatalf("first event %+v %v", e, err)
	}
	if _, err := c.PutNode(ctx, "cube", client.NodeInput{Type: "mesh", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for {
		e, err = st.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "node_put" {
			break
		}
	}
	if e.ID == "" || !strings.Contains(string(e.Data), `"cube"`) {
		t.Errorf("node_put event %+v", e)
	}
	if users := sess.Users(); len(users) != 1 || users[0] != "ann" {
		t.Errorf("users online while the stream is open: %v", users)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Events(ctx, "not a user!"); err == nil {
		t.Error("a bad user name opened a stream")
	}
}

func TestEventsParsing(t *testing.T) {
	body := ": keep-alive\n\nevent: hello\ndata: {\"a\":\ndata: 1}\n\nid: 7\nevent: node_put\ndata: {}\n\nevent: bad\ndata: {oops\n\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, client.Options{})
	st, err := c.Events(context.Background(), "ann")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if e, err := st.Next(); err != nil || e.Type != "hello" || string(e.Data) != "{\"a\":\n1}" {
		t.Fatalf("multi-line data: %+v %v", e, err)
	}
	if e, err := st.Next(); err != nil || e.Type != "node_put" || e.ID != "7" {
		t.Fatalf("second event: %+v %v", e, err)
	}
	if _, err := st.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("data that is not JSON: %v", err)
	}
}
