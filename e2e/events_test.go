package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
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
	ctx := t.Context()
	_, err := s.as(t, "ann").PutNode(ctx, "early", client.NodeInput{Type: "mesh"})
	if code, msg := answer(t, err); code != http.StatusForbidden && code != http.StatusUnauthorized {
		t.Errorf("PUT by a user while waiting: %d %s, want 403 (or 401)", code, msg)
	}
	_, err = s.anon(t).InitSession(ctx)
	if code, msg := answer(t, err); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("POST /v1/session/init without the admin password: %d %s, want 401 or 403", code, msg)
	}
	s.initSession(t)
	_, err = s.admin(t).InitSession(ctx)
	if code, msg := answer(t, err); code != http.StatusConflict {
		t.Errorf("second POST /v1/session/init: %d %s, want 409", code, msg)
	}

	big := randBytes(1<<20+12345, 1)
	// (wireCheck fails a PUT answer with data.)
	n := s.put(t, "mesh.big", client.NodeInput{Type: "mesh", Data: big})
	if n.ID != "mesh.big" || n.Owner != "COMMON" || n.Version != 1 {
		t.Errorf("PUT mesh.big answered %+v, want id mesh.big, owner COMMON, version 1, no data", n)
	}
	s.put(t, "mat_1", client.NodeInput{Type: "material", Data: []byte("red")})
	n = s.put(t, "obj-1", client.NodeInput{Type: "object", Deps: []string{"mesh.big", "mat_1"}, Data: []byte{0, 1, 2}})
	if !slices.Equal(n.Deps, []string{"mesh.big", "mat_1"}) {
		t.Errorf("PUT obj-1 deps = %q", n.Deps)
	}
	n = s.put(t, "mat_1", client.NodeInput{Type: "material", Data: []byte("blue")})
	if n.Version != 2 {
		t.Errorf("second PUT mat_1: version %d, want 2", n.Version)
	}
	got := s.getNode(t, "mesh.big")
	if !bytes.Equal(got.Data, big) || got.Type != "mesh" {
		t.Errorf("GET mesh.big: type %q, %d data bytes equal=%v; want the 1 MiB put", got.Type, len(got.Data), bytes.Equal(got.Data, big))
	}
	_, _, err = s.anon(t).GetNode(ctx, "nope")
	if code, _ := answer(t, err); code != http.StatusNotFound {
		t.Errorf("GET absent node: %d, want 404", code)
	}
	// The client escapes the id: the server sees /v1/nodes/bad%20id.
	_, err = s.admin(t).PutNode(ctx, "bad id", client.NodeInput{Type: "x"})
	if code, msg := answer(t, err); code != http.StatusBadRequest {
		t.Errorf("PUT with a malformed id: %d %s, want 400", code, msg)
	}
	if owned := s.setOwner(t, "mat_1", "bob"); owned.Owner != "bob" {
		t.Errorf("owner endpoint answered owner %q, want bob", owned.Owner)
	}
	_, err = s.as(t, "carl").PutNode(ctx, "mat_1", client.NodeInput{Type: "material"})
	if code, msg := answer(t, err); code != http.StatusForbidden {
		t.Errorf("PUT by carl of bob's node: %d %s, want 403", code, msg)
	}
	owned, err := s.as(t, "bob").SetOwner(ctx, "mat_1", "COMMON")
	if err != nil {
		t.Fatal(err)
	}
	if owned.Owner != "COMMON" {
		t.Errorf("bob giving mat_1 back: owner %q, want COMMON", owned.Owner)
	}
	if err := s.as(t, "carl").DeleteNode(ctx, "mat_1"); err != nil {
		t.Fatal(err)
	}
	got = s.getNode(t, "obj-1")
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
	_, err = s.as(t, "bob").PutNode(ctx, "ann-1", client.NodeInput{Type: "object"})
	if code, msg := answer(t, err); code != http.StatusForbidden {
		t.Errorf("PUT by bob of ann's node: %d %s, want 403", code, msg)
	}
	before := len(s.saves(t))

	ann.close()
	var saves []client.SaveSummary
	waitFor(t, 30*time.Second, "a save with reason user_disconnect:ann", func() (bool, string) {
		saves = s.saves(t)
		return len(saves) > before && saves[len(saves)-1].Reason == "user_disconnect:ann", "saves " + fmtSaves(saves)
	})
	last := saves[len(saves)-1]
	got = s.getNode(t, "ann-1")
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
func putOwned(t *testing.T, s *server, id, user string) client.Node {
	t.Helper()
	n, err := s.as(t, user).PutNode(t.Context(), id, client.NodeInput{Type: "object", Owner: user, Data: []byte(id)})
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

// TestAuth checks the passwords: the server password grants user
// operations, the admin password everything, /healthz is open.
func TestAuth(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	const userPW = "e2e-user-pw"
	s := startServer(t, st, serveOpts{args: []string{"--server-password", userPW}})
	// Each call is made with password pw (none if empty) and, for the PUT
	// as ann, X-Pitr-User. wireCheck fails every error answer that is not
	// {"error": ...}.
	healthz := func(ctx context.Context, c *client.Client) error {
		if !c.Healthy(ctx) {
			return errors.New("GET /healthz: not 200")
		}
		return nil
	}
	session := func(ctx context.Context, c *client.Client) error { _, err := c.Session(ctx); return err }
	nodes := func(ctx context.Context, c *client.Client) error { _, err := c.ListNodes(ctx); return err }
	initSession := func(ctx context.Context, c *client.Client) error { _, err := c.InitSession(ctx); return err }
	put := func(ctx context.Context, c *client.Client) error {
		_, err := c.PutNode(ctx, "n", client.NodeInput{Type: "object"})
		return err
	}
	save := func(ctx context.Context, c *client.Client) error { _, err := c.Save(ctx); return err }
	saves := func(ctx context.Context, c *client.Client) error { _, err := c.ListSaves(ctx); return err }
	cases := []struct {
		what, pw, user string
		call           func(context.Context, *client.Client) error
		want           []int
	}{
		{"GET /healthz", "", "", healthz, []int{200}},
		{"GET /v1/session", "", "", session, []int{401}},
		{"GET /v1/session", "wrong", "", session, []int{401}},
		{"GET /v1/session", userPW, "", session, []int{200}},
		{"GET /v1/nodes", adminPW, "", nodes, []int{200}},
		{"POST /v1/session/init", userPW, "", initSession, []int{403}},
		{"POST /v1/session/init", adminPW, "", initSession, []int{200}},
		{"PUT /v1/nodes/n", "", "", put, []int{401}},
		{"PUT /v1/nodes/n", userPW, "ann", put, []int{200}},
		{"POST /v1/saves", userPW, "", save, []int{403}},
		{"POST /v1/saves", "", "", save, []int{401, 403}},
		{"POST /v1/saves", adminPW, "", save, []int{200}},
		{"GET /v1/saves", userPW, "", saves, []int{200}},
	}
	for _, c := range cases {
		err := c.call(t.Context(), s.api(t, c.pw, c.user))
		if code, _ := answer(t, err); !slices.Contains(c.want, code) {
			t.Errorf("%s (password %q, user %q): %d %v, want %v", c.what, c.pw, c.user, code, err, c.want)
		}
	}
	if strings.Contains(s.out.String(), userPW) || strings.Contains(s.out.String(), adminPW) {
		t.Errorf("pitr serve logs a password")
	}
}
