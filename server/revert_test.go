package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// fakeHistory answers NodeAt from one save holding nodes.
type fakeHistory struct {
	save  *manifest.Manifest
	nodes map[string]*session.Node
	err   error
	asked []string // "at …" or "save …" per call
}

func (h *fakeHistory) NodeAt(_ context.Context, id string, at time.Time, latest bool, saveID string) (*session.Node, *manifest.Manifest, error) {
	switch {
	case saveID != "":
		h.asked = append(h.asked, "save "+saveID)
	case latest:
		h.asked = append(h.asked, "latest")
	default:
		h.asked = append(h.asked, "at "+at.UTC().Format(time.RFC3339))
	}
	if h.err != nil {
		return nil, nil, h.err
	}
	return h.nodes[id], h.save, nil
}

func revertServer(t *testing.T, h History) (*Server, *session.Session) {
	t.Helper()
	sess := session.New()
	for _, id := range []string{"a", "c"} {
		if _, err := sess.Put(session.Actor{Admin: true}, id, session.NodeInput{Type: "t", Data: []byte(id + " now")}); err != nil {
			t.Fatal(err)
		}
	}
	return New(sess, newFakeSaver(), Config{AdminPassword: adminPW, History: h}), sess
}

func postRevert(srv *Server, id, query, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/v1/nodes/"+id+"/revert"+query, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminPW)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func TestRevert(t *testing.T) {
	save := &manifest.Manifest{ID: "20250112T153445.123Z-1a2b3c", Time: time.Date(2025, 1, 12, 15, 34, 45, 123e6, time.UTC)}
	h := &fakeHistory{save: save, nodes: map[string]*session.Node{
		"a": {ID: "a", Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte("a then"), Version: 1},
		"b": {ID: "b", Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte("b then"), Version: 3},
	}}
	srv, sess := revertServer(t, h)
	gen := sess.Gen()
	rec := postRevert(srv, "a", "?dry_run=1", `{"at":"2025-01-12T15:35:00Z"}`)
	var ans revertAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); rec.Code != 200 || err != nil || ans.Action != RevertPut || !ans.DryRun || sess.Gen() != gen {
		t.Fatalf("dry run: %d %s", rec.Code, rec.Body)
	}
	if h.asked[0] != "at 2025-01-12T15:35:00Z" {
		t.Errorf("asked %v", h.asked)
	}
	for id, want := range map[string]string{"a": RevertPut, "b": RevertPut, "c": RevertDelete, "zz": RevertNone} {
		rec := postRevert(srv, id, "", `{"save":"`+save.ID+`"}`)
		ans = revertAnswer{}
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); rec.Code != 200 || err != nil || ans.Action != want || ans.Save.ID != save.ID {
			t.Errorf("revert %s: %d %s, want action %s", id, rec.Code, rec.Body, want)
		}
	}
	for id, want := range map[string]string{"a": "a then", "b": "b then"} {
		n, err := sess.Get(id)
		if err != nil || string(n.Data) != want || (id == "a" && n.Version < 2) {
			t.Errorf("node %s after revert: %+v %v", id, n, err)
		}
	}
	if _, err := sess.Get("c"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("node c, absent then, after revert: %v", err)
	}
	if rec := postRevert(srv, "a", "", `{"save":"`+save.ID+`"}`); !bytes.Contains(rec.Body.Bytes(), []byte(`"action":"none"`)) {
		t.Errorf("a second revert: %s", rec.Body)
	}
}

func TestRevertBadInput(t *testing.T) {
	h := &fakeHistory{save: &manifest.Manifest{ID: "20250112T153445.123Z-1a2b3c"}}
	srv, sess := revertServer(t, h)
	gen := sess.Gen()
	for _, tc := range []struct {
		id, body string
		status   int
	}{
		{"a", `{}`, 400},
		{"a", `{"at":"2025-01-12T15:35:00Z","save":"20250112T153445.123Z-1a2b3c"}`, 400},
		{"a", `{"at":"yesterday"}`, 400},
		{"a", `{"save":"nope"}`, 400},
		{"a", `{"at":5}`, 400},
		{"a", `{"when":"latest"}`, 400},
		{"a", `not json`, 400},
		{"bad%20id", `{"at":"latest"}`, 400},
	} {
		if rec := postRevert(srv, tc.id, "", tc.body); rec.Code != tc.status || !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"error":"`)) {
			t.Errorf("revert %s %s: %d %s, want %d", tc.id, tc.body, rec.Code, rec.Body, tc.status)
		}
	}
	h.err = manifest.ErrNoneBefore
	if rec := postRevert(srv, "a", "", `{"at":"2000-01-01T00:00:00Z"}`); rec.Code != http.StatusNotFound {
		t.Errorf("no save then: %d %s", rec.Code, rec.Body)
	}
	h.err = errors.New("store down")
	if rec := postRevert(srv, "a", "", `{"at":"latest"}`); rec.Code != http.StatusBadGateway {
		t.Errorf("store down: %d %s", rec.Code, rec.Body)
	}
	noHistory, _ := revertServer(t, nil)
	if rec := postRevert(noHistory, "a", "", `{"at":"latest"}`); rec.Code != http.StatusNotImplemented {
		t.Errorf("no history: %d %s", rec.Code, rec.Body)
	}
	if sess.Gen() != gen {
		t.Error("a refused revert changed the graph")
	}
}

func FuzzRevert(f *testing.F) {
	for _, s := range []string{`{"at":"latest"}`, `{"save":"20250112T153445.123Z-1a2b3c"}`, `{"at":"2025-01-12 15:34"}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h := &fakeHistory{save: &manifest.Manifest{ID: "20250112T153445.123Z-1a2b3c"},
			nodes: map[string]*session.Node{"a": {ID: "a", Type: "t", Owner: session.Common, Deps: []string{}, Version: 1}}}
		srv, sess := revertServer(t, h)
		gen := sess.Gen()
		rec := postRevert(srv, "a", "", string(body))
		switch rec.Code {
		case 200:
		case 400:
			if sess.Gen() != gen {
				t.Fatalf("refused body %q changed the graph", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
