package e2e

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEditGraphAndPresence edits the graph over the API, then checks that a
// user's event stream sees the changes, that a user can only be online once,
// and that closing the stream returns the user's nodes to COMMON and saves
// with reason user_disconnect:NAME.
func TestEditGraphAndPresence(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})

	in := s.session(t)
	if in.State != "waiting" || in.Session != "default" || in.LastSave != nil || in.LastError != nil {
		t.Errorf("new session: %+v, want state waiting, session default, no last save, no error", in)
	}
	// Only the admin changes nodes while the session waits, and inits it.
	if code, b := s.do(t, req{method: "PUT", path: "/v1/nodes/early", body: nodeIn{Type: "mesh"}, user: "ann"}); code != http.StatusForbidden && code != http.StatusUnauthorized {
		t.Errorf("PUT by a user while waiting: %d %s, want 403 (or 401)", code, b)
	}
	if code, b := s.do(t, req{method: "POST", path: "/v1/session/init"}); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("POST /v1/session/init without the admin password: %d %s, want 401 or 403", code, b)
	}
	s.initSession(t)
	if code, b := s.do(t, req{method: "POST", path: "/v1/session/init", admin: true}); code != http.StatusConflict {
		t.Errorf("second POST /v1/session/init: %d %s, want 409", code, b)
	}

	big := randBytes(1<<20+12345, 1)
	n := s.put(t, "mesh.big", nodeIn{Type: "mesh", Data: big})
	if n.ID != "mesh.big" || n.Owner != "COMMON" || n.Version != 1 || n.Data != nil {
		t.Errorf("PUT mesh.big answered %+v, want id mesh.big, owner COMMON, version 1, no data", n)
	}
	s.put(t, "mat_1", nodeIn{Type: "material", Data: []byte("red")})
	n = s.put(t, "obj-1", nodeIn{Type: "object", Deps: []string{"mesh.big", "mat_1"}, Data: []byte{0, 1, 2}})
	if !slices.Equal(n.Deps, []string{"mesh.big", "mat_1"}) {
		t.Errorf("PUT obj-1 deps = %q", n.Deps)
	}
	n = s.put(t, "mat_1", nodeIn{Type: "material", Data: []byte("blue")})
	if n.Version != 2 {
		t.Errorf("second PUT mat_1: version %d, want 2", n.Version)
	}
	var got node
	s.ok(t, req{method: "GET", path: "/v1/nodes/mesh.big"}, &got)
	if !bytes.Equal(got.Data, big) || got.Type != "mesh" {
		t.Errorf("GET mesh.big: type %q, %d data bytes equal=%v; want the 1 MiB put", got.Type, len(got.Data), bytes.Equal(got.Data, big))
	}
	if code, _ := s.do(t, req{method: "GET", path: "/v1/nodes/nope"}); code != http.StatusNotFound {
		t.Errorf("GET absent node: %d, want 404", code)
	}
	if code, b := s.do(t, req{method: "PUT", path: "/v1/nodes/bad%20id", body: nodeIn{Type: "x"}, admin: true}); code != http.StatusBadRequest {
		t.Errorf("PUT with a malformed id: %d %s, want 400", code, b)
	}
	var owned node
	s.ok(t, req{method: "POST", path: "/v1/nodes/mat_1/owner", body: map[string]string{"owner": "bob"}, admin: true}, &owned)
	if owned.Owner != "bob" {
		t.Errorf("owner endpoint answered owner %q, want bob", owned.Owner)
	}
	if code, b := s.do(t, req{method: "PUT", path: "/v1/nodes/mat_1", body: nodeIn{Type: "material"}, user: "carl"}); code != http.StatusForbidden {
		t.Errorf("PUT by carl of bob's node: %d %s, want 403", code, b)
	}
	s.ok(t, req{method: "POST", path: "/v1/nodes/mat_1/owner", body: map[string]string{"owner": "COMMON"}, user: "bob"}, &owned)
	if owned.Owner != "COMMON" {
		t.Errorf("bob giving mat_1 back: owner %q, want COMMON", owned.Owner)
	}
	s.ok(t, req{method: "DELETE", path: "/v1/nodes/mat_1", user: "carl"}, nil)
	s.ok(t, req{method: "GET", path: "/v1/nodes/obj-1"}, &got)
	if !slices.Equal(got.Deps, []string{"mesh.big"}) {
		t.Errorf("after DELETE mat_1, obj-1 deps = %q, want [mesh.big]", got.Deps)
	}

	// Presence: ann is online while her stream is open, and only once.
	ann, code := s.openEvents(t, "ann")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/events?user=ann: %d, want 200", code)
	}
	waitFor(t, 10*time.Second, "ann in GET /v1/session users", func() (bool, string) {
		u := s.session(t).Users
		return slices.Contains(u, "ann"), "users " + fmtStrings(u)
	})
	if _, code := s.openEvents(t, "ann"); code != http.StatusConflict {
		t.Errorf("second GET /v1/events?user=ann while the first is open: %d, want 409", code)
	}
	n = putOwned(t, s, "ann-1", "ann")
	if n.Owner != "ann" {
		t.Errorf("PUT ann-1 by ann with owner ann: owner %q", n.Owner)
	}
	ann.waitEvent(t, 10*time.Second, "ann-1")
	if code, b := s.do(t, req{method: "PUT", path: "/v1/nodes/ann-1", body: nodeIn{Type: "object"}, user: "bob"}); code != http.StatusForbidden {
		t.Errorf("PUT by bob of ann's node: %d %s, want 403", code, b)
	}
	before := len(s.saves(t))

	ann.close()
	var saves []saveSummary
	waitFor(t, 30*time.Second, "a save with reason user_disconnect:ann", func() (bool, string) {
		saves = s.saves(t)
		return len(saves) > before && saves[len(saves)-1].Reason == "user_disconnect:ann", "saves " + fmtSaves(saves)
	})
	last := saves[len(saves)-1]
	s.ok(t, req{method: "GET", path: "/v1/nodes/ann-1"}, &got)
	if got.Owner != "COMMON" {
		t.Errorf("after ann left, ann-1 owner %q, want COMMON", got.Owner)
	}
	if u := s.session(t).Users; slices.Contains(u, "ann") {
		t.Errorf("after ann's stream closed, users %q still hold ann", u)
	}
	if !last.Initialized || last.NodeCount != 3 {
		t.Errorf("user_disconnect save: %+v, want initialized with 3 nodes", last)
	}

	// The listing shows the save once it is committed, a moment before the
	// saver is done with it; a save asked for meanwhile answers that save.
	// Ask once so the saver is idle before the check below.
	if r := s.saveNow(t); r.ID != last.ID {
		t.Errorf("POST /v1/saves right after the user_disconnect save: id %s, want %s", r.ID, last.ID)
	}

	// Users merely coming and going change nothing: no save.
	ann, code = s.openEvents(t, "ann")
	if code != http.StatusOK {
		t.Fatalf("ann reconnecting: %d, want 200", code)
	}
	waitFor(t, 10*time.Second, "ann online again", func() (bool, string) {
		u := s.session(t).Users
		return slices.Contains(u, "ann"), "users " + fmtStrings(u)
	})
	ann.close()
	waitFor(t, 10*time.Second, "ann offline again", func() (bool, string) {
		u := s.session(t).Users
		return !slices.Contains(u, "ann"), "users " + fmtStrings(u)
	})
	r := s.saveNow(t)
	if !r.Unchanged || r.ID != last.ID || r.BytesUploaded != 0 {
		t.Errorf("POST /v1/saves after ann came and went: %+v, want unchanged, id %s, 0 bytes uploaded", r, last.ID)
	}
	if saves := s.saves(t); saves[len(saves)-1].ID != last.ID {
		t.Errorf("saves after the unchanged save: %s, want %s still the newest", fmtSaves(saves), last.ID)
	}
}

// putOwned puts node id owned by user, as that user (no admin password).
func putOwned(t *testing.T, s *server, id, user string) node {
	t.Helper()
	var n node
	s.ok(t, req{method: "PUT", path: "/v1/nodes/" + id, body: nodeIn{Type: "object", Owner: user, Data: []byte(id)}, user: user}, &n)
	return n
}

// TestAuth checks the passwords: the server password grants user
// operations, the admin password everything, /healthz is open.
func TestAuth(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	const userPW = "e2e-user-pw"
	s := startServer(t, st, serveOpts{args: []string{"--server-password", userPW}})
	cases := []struct {
		r    req
		want []int
	}{
		{req{method: "GET", path: "/healthz"}, []int{200}},
		{req{method: "GET", path: "/v1/session"}, []int{401}},
		{req{method: "GET", path: "/v1/session", token: "wrong"}, []int{401}},
		{req{method: "GET", path: "/v1/session", token: userPW}, []int{200}},
		{req{method: "GET", path: "/v1/nodes", admin: true}, []int{200}},
		{req{method: "POST", path: "/v1/session/init", token: userPW}, []int{403}},
		{req{method: "POST", path: "/v1/session/init", admin: true}, []int{200}},
		{req{method: "PUT", path: "/v1/nodes/n", body: nodeIn{Type: "object"}}, []int{401}},
		{req{method: "PUT", path: "/v1/nodes/n", body: nodeIn{Type: "object"}, token: userPW, user: "ann"}, []int{200}},
		{req{method: "POST", path: "/v1/saves", token: userPW}, []int{403}},
		{req{method: "POST", path: "/v1/saves"}, []int{401, 403}},
		{req{method: "POST", path: "/v1/saves", admin: true}, []int{200}},
		{req{method: "GET", path: "/v1/saves", token: userPW}, []int{200}},
	}
	for _, c := range cases {
		code, b := s.do(t, c.r)
		if !slices.Contains(c.want, code) {
			t.Errorf("%s %s (token %q, admin %v): %d %s, want %v", c.r.method, c.r.path, c.r.token, c.r.admin, code, b, c.want)
		}
		if code >= 400 {
			requireKeys(t, c.r.method+" "+c.r.path, b, []string{"error"})
		}
	}
	if strings.Contains(s.out.String(), userPW) || strings.Contains(s.out.String(), adminPW) {
		t.Errorf("pitr serve logs a password")
	}
}
