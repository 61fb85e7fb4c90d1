package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	s.put(t, "base", nodeIn{Type: "mesh", Data: randBytes(200<<10, 7)})
	a := s.saveNow(t)

	srv.Stop()
	s.put(t, "base", nodeIn{Type: "mesh", Data: randBytes(200<<10, 8)})
	s.put(t, "during-1", nodeIn{Type: "object", Deps: []string{"base"}, Data: []byte("edited while the store was down")})
	code, body, err := s.try(t, req{method: "POST", path: "/v1/saves", admin: true, timeout: time.Minute})
	switch {
	case err != nil:
		t.Errorf("POST /v1/saves while the store is down: %v (want a prompt non-2xx answer)", err)
	case code/100 == 2:
		t.Errorf("POST /v1/saves while the store is down: %d %s, want a failure", code, body)
	default:
		requireKeys(t, "failed POST /v1/saves", body, []string{"error"})
		checkSecrets(t, "failed POST /v1/saves", string(body), []string{st.secret})
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
	s.put(t, "during-2", nodeIn{Type: "object", Deps: []string{"during-1"}})
	if code, b := s.do(t, req{method: "DELETE", path: "/v1/nodes/during-1", user: "zed"}); code != 200 {
		t.Errorf("DELETE during the outage: %d %s", code, b)
	}
	s.put(t, "during-1", nodeIn{Type: "object", Data: []byte("put back")})

	srv.Restart()
	var r saveResult
	waitFor(t, 90*time.Second, "POST /v1/saves to succeed once the store is back", func() (bool, string) {
		code, b, err := s.try(t, req{method: "POST", path: "/v1/saves", admin: true, timeout: time.Minute})
		if err != nil || code != 200 {
			return false, fmt.Sprintf("%d %s %v", code, b, err)
		}
		return json.Unmarshal(b, &r) == nil, string(b)
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
