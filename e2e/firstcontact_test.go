package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// startBare starts `pitr serve` for st with only a listen address, a data
// dir and extra args (no admin password), and waits until it serves.
func startBare(t *testing.T, st *store, dataDir string, args ...string) *server {
	t.Helper()
	addr := "127.0.0.1:" + freePort(t)
	all := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--save-interval", "1h"}, st.args...)
	s := newServer(t, startProc(t, []string{st.secret}, st.env, append(all, args...)...), addr, dataDir, st)
	if err := s.waitHealthy(t, 90*time.Second); err != nil {
		t.Fatalf("pitr serve: %v", err)
	}
	return s
}

// TestGeneratedAdminPassword: with no admin password configured, serve
// generates one into the data dir (0600), logs where with a curl line,
// names it in the errors of callers without it, and reuses it; a
// configured password wins and writes no file.
func TestGeneratedAdminPassword(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	dir := filepath.Join(t.TempDir(), "session")
	file := filepath.Join(dir, "admin-password")
	s := startBare(t, st, dir)
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin password file: %v, mode %v; want mode 0600", err, fi)
	}
	b, _ := os.ReadFile(file)
	pw := strings.TrimSpace(string(b))
	if len(pw) < 16 {
		t.Fatalf("generated admin password %q is too short", pw)
	}
	if log := s.out.String(); !strings.Contains(log, file) || !strings.Contains(log, "curl") || strings.Contains(log, pw) {
		t.Errorf("start-up log must name %s with a curl line and never print the password:\n%s", file, log)
	}
	_, err = s.anon(t).InitSession(t.Context())
	code, msg := answer(t, err)
	if code != 401 || !strings.Contains(msg, "ADMIN_PASSWORD") || strings.Contains(msg, dir) {
		t.Errorf("init without a password: %d %s; want 401 naming ADMIN_PASSWORD, without the server's paths", code, msg)
	}
	_, err = s.as(t, "ann").PutNode(t.Context(), "n", client.NodeInput{Type: "t"})
	code, msg = answer(t, err)
	if code != 403 || !strings.Contains(msg, file) {
		t.Errorf("put while waiting, without the admin password: %d %s; want 403 naming %s", code, msg, file)
	}
	if _, err := s.api(t, pw, "").InitSession(t.Context()); err != nil {
		t.Fatal(err)
	}
	// pitr save finds the generated password in the data dir.
	saved := runPitr(t, nil, nil, "save", "--server", s.url, "--data-dir", dir)
	if saved.code != 0 || !strings.HasPrefix(saved.stdout, "save ") {
		t.Errorf("pitr save --server: exit %d\n%s%s", saved.code, saved.stdout, saved.stderr)
	}
	s.stop(t)

	s2 := startBare(t, st, dir)
	if b2, _ := os.ReadFile(file); string(b2) != string(b) {
		t.Fatal("a restart generated a new admin password")
	}
	if _, err := s2.api(t, pw, "").PutNode(t.Context(), "n", client.NodeInput{Type: "t"}); err != nil {
		t.Fatal(err)
	}
	s2.stop(t)

	dir3 := filepath.Join(t.TempDir(), "session")
	s3 := startBare(t, st, dir3, "--session", "other", "--admin-password", "chosen-pw")
	if _, err := os.Stat(filepath.Join(dir3, "admin-password")); !os.IsNotExist(err) {
		t.Errorf("a configured admin password still wrote a file: %v", err)
	}
	if _, err := s3.api(t, "chosen-pw", "").InitSession(t.Context()); err != nil {
		t.Fatal(err)
	}
	s3.stop(t)
}

// TestStartupWaitsForTheStore: a store that cannot be reached at start-up
// is waited for with logged retries, not a quick exit.
func TestStartupWaitsForTheStore(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	down := minioStore(srv, "pitr-nowhere", "")
	down.url = "minio://127.0.0.1:" + freePort(t) + "/pitr-nowhere?tls=false"
	down.args = []string{"--store", down.url}
	p := startProc(t, []string{srv.SecretKey}, down.env, "serve", "--listen", "127.0.0.1:"+freePort(t),
		"--data-dir", filepath.Join(t.TempDir(), "session"), "--admin-password", adminPW, "--store", down.url)
	waitFor(t, 30*time.Second, "two logged retries to reach the store", func() (bool, string) {
		out := p.out.String()
		return strings.Count(out, "cannot reach the store; retrying") >= 2, tail(out, 500)
	})
	if p.exited() {
		t.Fatalf("serve exited while the store was unreachable:\n%s", p.out.String())
	}
}

// TestServeBadCredentialsFailsAtOnce: waiting is for an unreachable store;
// rejected credentials end start-up at once, naming the bucket.
func TestServeBadCredentialsFailsAtOnce(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	st := newStore(t)
	st.secret = "wrong-secret-e2e-0123456789"
	st.env = []string{"MINIO_ROOT_USER=" + srv.AccessKey, "MINIO_ROOT_PASSWORD=" + st.secret}
	p := startProc(t, []string{st.secret}, st.env, serveArgs(st, serveOpts{dataDir: filepath.Join(t.TempDir(), "session")}, "127.0.0.1:"+freePort(t))...)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve with wrong credentials still running after 30 s:\n%s", tail(p.out.String(), 2000))
	}
	if out := p.out.String(); p.exitCode() == 0 || !strings.Contains(out, st.bucket) || strings.Contains(out, "retrying") {
		t.Fatalf("serve with wrong credentials: exit %d\n%s\nwant a failure at once naming bucket %s", p.exitCode(), out, st.bucket)
	}
}
