package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/replicate"
)

func TestGetSession(t *testing.T) {
	e := newEnv(t, Config{SessionName: "scene", ServerPassword: serverPW})
	r := e.do("GET", "/v1/session", "", "user").want(t, 200)
	for _, frag := range []string{`"session":"scene"`, `"state":"waiting"`, `"node_count":0`, `"users":[]`, `"last_save":null`, `"last_error":null`} {
		if !strings.Contains(string(r.body), frag) {
			t.Fatalf("missing %s in %s", frag, r.body)
		}
	}

	when := time.Date(2025, 1, 12, 15, 34, 45, 0, time.FixedZone("CET", 3600))
	e.saver.status = replicate.Status{
		LastSave:  &replicate.Result{ID: "s-1", Time: when, Reason: "interval", NodeCount: 9},
		LastError: "put chunk abc: store down",
	}
	if err := e.sess.Init(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e.sess, adminActor, "a", nodeIn("t"))
	if err := e.sess.Join("bob"); err != nil {
		t.Fatal(err)
	}
	if err := e.sess.Join("ann"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Session   string   `json:"session"`
		State     string   `json:"state"`
		NodeCount int      `json:"node_count"`
		Users     []string `json:"users"`
		LastSave  *struct {
			ID     string    `json:"id"`
			Time   time.Time `json:"time"`
			Reason string    `json:"reason"`
		} `json:"last_save"`
		LastError *string `json:"last_error"`
	}
	e.do("GET", "/v1/session", "", "user").want(t, 200).decode(t, &got)
	if got.Session != "scene" || got.State != "active" || got.NodeCount != 1 || !slices.Equal(got.Users, []string{"ann", "bob"}) {
		t.Fatalf("session %+v", got)
	}
	if got.LastSave == nil || got.LastSave.ID != "s-1" || !got.LastSave.Time.Equal(when) || got.LastSave.Reason != "interval" {
		t.Fatalf("last_save %+v", got.LastSave)
	}
	if got.LastError == nil || *got.LastError != "put chunk abc: store down" {
		t.Fatalf("last_error %v", got.LastError)
	}
}

func TestInit(t *testing.T) {
	e := newEnv(t, Config{AdminPassword: adminPW})
	r := e.do("POST", "/v1/session/init", "", "admin").want(t, 200)
	if !strings.Contains(string(r.body), `"state":"active"`) {
		t.Fatalf("init response %s", r.body)
	}
	gen := e.sess.Gen()
	r = e.do("POST", "/v1/session/init", "", "admin").want(t, http.StatusConflict)
	if msg := r.errMsg(t); !strings.Contains(msg, "already active") {
		t.Fatalf("message %q", msg)
	}
	if e.sess.Gen() != gen {
		t.Fatal("second init changed the session")
	}
}

func TestPostSave(t *testing.T) {
	e := activeEnv(t)
	e.saver.result = replicate.Result{
		ID: "s-2", Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Reason: "api",
		NodeCount: 3, BytesTotal: 100, BytesUploaded: 40, ChunksTotal: 5, ChunksUploaded: 2, DurationMS: 7,
	}
	r := e.do("POST", "/v1/saves", "", "admin").want(t, 200)
	var got replicate.Result
	r.decode(t, &got)
	if got != e.saver.result {
		t.Fatalf("result %+v", got)
	}
	for _, k := range []string{"id", "time", "reason", "node_count", "bytes_total", "bytes_uploaded", "chunks_total", "chunks_uploaded", "duration_ms", "unchanged"} {
		if !strings.Contains(string(r.body), `"`+k+`":`) {
			t.Fatalf("missing %s in %s", k, r.body)
		}
	}
	if !slices.Equal(e.saver.saveReasons, []string{"api"}) {
		t.Fatalf("save reasons %v", e.saver.saveReasons)
	}

	e.saver.result = replicate.Result{ID: "s-2", Unchanged: true}
	r = e.do("POST", "/v1/saves", "", "admin").want(t, 200)
	if !strings.Contains(string(r.body), `"unchanged":true`) {
		t.Fatalf("unchanged %s", r.body)
	}

	e.saver.saveErr = errors.New("put manifest: fenced by host-b")
	r = e.do("POST", "/v1/saves", "", "admin").want(t, http.StatusServiceUnavailable)
	if msg := r.errMsg(t); !strings.Contains(msg, "fenced by host-b") || !strings.Contains(msg, "save failed") {
		t.Fatalf("message %q", msg)
	}

	// not admin
	e.do("POST", "/v1/saves", "", "user").want(t, http.StatusForbidden)
	e.do("POST", "/v1/saves", "").want(t, http.StatusUnauthorized)
	if len(e.saver.saveReasons) != 3 {
		t.Fatalf("save called %d times", len(e.saver.saveReasons))
	}
}

func TestListSaves(t *testing.T) {
	e := activeEnv(t)
	r := e.do("GET", "/v1/saves", "", "user").want(t, 200)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("no saves: %s", r.body)
	}
	local := time.Date(2025, 1, 12, 16, 0, 0, 0, time.FixedZone("CET", 3600))
	e.saver.saves = []replicate.SaveSummary{
		{ID: "s-1", Time: local, Reason: "interval", Initialized: true, NodeCount: 2, BytesTotal: 10, BytesUploaded: 10},
		{ID: "s-2", Time: local.Add(time.Minute), Reason: "api", NodeCount: 3},
	}
	var got []replicate.SaveSummary
	r = e.do("GET", "/v1/saves", "", "user").want(t, 200)
	r.decode(t, &got)
	if len(got) != 2 || got[0].ID != "s-1" || got[1].ID != "s-2" || !got[0].Initialized || got[0].BytesUploaded != 10 {
		t.Fatalf("saves %+v", got)
	}
	if !strings.Contains(string(r.body), `"time":"2025-01-12T15:00:00Z"`) {
		t.Fatalf("time not UTC: %s", r.body)
	}
	e.saver.savesErr = errors.New("list sessions/test: access denied")
	r = e.do("GET", "/v1/saves", "", "user").want(t, http.StatusServiceUnavailable)
	if msg := r.errMsg(t); !strings.Contains(msg, "access denied") {
		t.Fatalf("message %q", msg)
	}
}

func TestPanicMiddleware(t *testing.T) {
	e := activeEnv(t)
	e.saver.panicStatus = true
	r := e.do("GET", "/v1/session", "", "user").want(t, http.StatusInternalServerError)
	if msg := r.errMsg(t); msg != "internal error" {
		t.Fatalf("message %q", msg)
	}
	if got := e.saver.Requests(); !slices.Equal(got, []string{"internal_error"}) {
		t.Fatalf("requests %v", got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "panic in http handler") || !strings.Contains(logs, "status exploded") {
		t.Fatalf("panic not logged:\n%s", logs)
	}
	// the server keeps serving
	e.saver.panicStatus = false
	e.do("GET", "/v1/session", "", "user").want(t, 200)

	// http.ErrAbortHandler is passed on, not answered
	h := e.srv.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler { //nolint:errorlint
				t.Fatalf("recovered %v", v)
			}
		}()
		h.ServeHTTP(nil, nil)
	}()
}

func TestHealthzAndMetrics(t *testing.T) {
	e := activeEnv(t)
	r := e.do("GET", "/healthz", "").want(t, 200)
	if !strings.Contains(string(r.body), "ok") {
		t.Fatalf("healthz %s", r.body)
	}
	e.do("GET", "/metrics", "").want(t, http.StatusNotFound).errMsg(t)

	e = newEnv(t, Config{ServerPassword: serverPW, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("pitr_saves_total 3\n"))
	})})
	r = e.do("GET", "/metrics", "").want(t, 200)
	if string(r.body) != "pitr_saves_total 3\n" {
		t.Fatalf("metrics %q", r.body)
	}
}
