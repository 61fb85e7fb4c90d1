package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/internal/miniotest"
)

// TestStoreOutage stops MinIO under a running server: edits keep working,
// saves fail and GET /v1/session shows the failure; when MinIO is back saves
// succeed again, and the edits made during the outage are restorable.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t) // its own MinIO, to stop
	st := minioStore(srv, miniotest.Bucket(t), "")
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "base", client.NodeInput{Type: "mesh", Data: randBytes(200<<10, 7)})
	a := s.saveNow(t)

	srv.Stop()
	s.put(t, "base", client.NodeInput{Type: "mesh", Data: randBytes(200<<10, 8)})
	s.put(t, "during-1", client.NodeInput{Type: "object", Deps: []string{"base"}, Data: []byte("edited while the store was down")})
	// wireCheck requires the failure's body to be {"error": ...}.
	adm := s.admin(t)
	failed, err := adm.Save(within(t, time.Minute))
	var ae *client.APIError
	switch {
	case err == nil:
		t.Errorf("POST /v1/saves while the store is down: %+v, want a failure", failed)
	case !errors.As(err, &ae):
		t.Errorf("POST /v1/saves while the store is down: %v (want a prompt non-2xx answer)", err)
	default:
		checkSecrets(t, "failed POST /v1/saves", ae.Message, []string{st.secret})
	}
	waitFor(t, 30*time.Second, "GET /v1/session last_error to show the failing store", func() (bool, string) {
		in := s.session(t)
		return in.LastError != nil && *in.LastError != "", fmt.Sprintf("%+v", in)
	})
	in := s.session(t)
	checkSecrets(t, "GET /v1/session last_error", *in.LastError, []string{st.secret})
	if in.State != "active" || in.NodeCount != 2 {
		t.Errorf("session during the outage: %+v, want active with 2 nodes", in)
	}
	s.put(t, "during-2", client.NodeInput{Type: "object", Deps: []string{"during-1"}})
	if code, msg := answer(t, s.as(t, "zed").DeleteNode(t.Context(), "during-1")); code != 200 {
		t.Errorf("DELETE during the outage: %d %s", code, msg)
	}
	s.put(t, "during-1", client.NodeInput{Type: "object", Data: []byte("put back")})

	srv.Restart()
	var r *client.SaveResult
	waitFor(t, 90*time.Second, "POST /v1/saves to succeed once the store is back", func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		var err error
		if r, err = adm.Save(ctx); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if r.ID == "" || r.ID == a.ID || r.NodeCount != 3 {
		t.Errorf("save after the outage: %+v, want a new save (not %s) of 3 nodes", r, a.ID)
	}
	waitFor(t, 30*time.Second, "GET /v1/session last_error to clear", func() (bool, string) {
		in := s.session(t)
		return in.LastError == nil, fmt.Sprintf("%+v", in)
	})
	if ls := s.session(t).LastSave; ls == nil || ls.ID != r.ID {
		t.Errorf("GET /v1/session last_save = %+v, want %s", ls, r.ID)
	}
	graph := s.graph(t)
	s.kill(t)

	dir := filepath.Join(t.TempDir(), "after")
	res := st.mustPitr(t, "restore", "--at", "latest", "--data-dir", dir)
	if !strings.Contains(res.stdout, r.ID) {
		t.Errorf("restore --at latest does not name save %s:\n%s", r.ID, res.stdout)
	}
	s2 := startServer(t, st, serveOpts{dataDir: dir, args: []string{"--takeover"}})
	s2.requireGraph(t, "restore of the save made after the outage", graph)
}
