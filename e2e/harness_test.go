package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
)

// adminPW is the admin password every test server gets.
const adminPW = "e2e-admin-pw"

// pitrBin is the pitr binary TestMain built; buildErr says why it is missing.
var (
	pitrBin  string
	buildErr error
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pitr-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pitrBin = filepath.Join(dir, "pitr")
	args := []string{"build", "-o", pitrBin}
	if race := os.Getenv("PITR_E2E_RACE"); race == "1" || (race == "" && raceEnabled) {
		args = append(args, "-race")
	}
	args = append(args, "github.com/pitr-dev/pitr/cmd/pitr")
	if out, err := exec.Command(goTool(), args...).CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	defer stopSharedMinio()
	return m.Run()
}

// goTool is the go command that runs these tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// binary returns the built pitr binary or fails t.
func binary(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building pitr failed: %v", buildErr)
	}
	return pitrBin
}

// shared is the MinIO server the tests share, each in its own bucket.
var shared struct {
	once sync.Once
	srv  *miniotest.Server
	dir  string
	err  error
}

func sharedMinio(t testing.TB) *miniotest.Server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "pitr-e2e-minio-")
		if shared.err == nil {
			shared.srv, shared.err = miniotest.Launch(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatalf("miniotest: %v", shared.err)
	}
	return shared.srv
}

func stopSharedMinio() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
}

// store is one store as the pitr commands are told about it.
type store struct {
	url    string
	args   []string // --store URL and friends, for every command
	env    []string // credentials
	secret string   // must never appear in any output
	minio  *miniotest.Server
	bucket string
	prefix string
}

// newStore returns a minio:// store in a fresh bucket of the shared MinIO.
func newStore(t testing.TB) *store {
	t.Helper()
	return minioStore(sharedMinio(t), miniotest.Bucket(t), "")
}

// minioStore is bucket[/prefix] of srv as a minio:// store.
func minioStore(srv *miniotest.Server, bucket, prefix string) *store {
	path := bucket
	if prefix != "" {
		path += "/" + prefix
	}
	url := fmt.Sprintf("minio://%s/%s?tls=false", srv.Addr, path)
	return &store{
		url:    url,
		args:   []string{"--store", url},
		env:    []string{"MINIO_ROOT_USER=" + srv.AccessKey, "MINIO_ROOT_PASSWORD=" + srv.SecretKey},
		secret: srv.SecretKey,
		minio:  srv, bucket: bucket, prefix: prefix,
	}
}

// s3Store is the same bucket as an s3:// store at srv's endpoint.
func s3Store(srv *miniotest.Server, bucket string) *store {
	url := "s3://" + bucket
	return &store{
		url:  url,
		args: []string{"--store", url, "--s3-endpoint", srv.Endpoint},
		env: []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
			"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"},
		secret: srv.SecretKey,
		minio:  srv, bucket: bucket,
	}
}

// childEnv is the test's environment without anything that would change
// how pitr behaves (PITR_*, MINIO_*, AWS_* but AWS_CA_BUNDLE, passwords),
// plus extra.
func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "AWS_CA_BUNDLE" && (strings.HasPrefix(k, "PITR_") || strings.HasPrefix(k, "MINIO_") ||
			strings.HasPrefix(k, "AWS_") || k == "SERVER_PASSWORD" || k == "ADMIN_PASSWORD") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a long-running pitr child process.
type proc struct {
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
	err  error // from Wait, set when done is closed
}

func startProc(t testing.TB, secrets []string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = childEnv(env)
	p := &proc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pitr %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of pitr %s:\n%s", strings.Join(args, " "), tail(p.out.String(), 6000))
		}
		checkOutput(t, "output of pitr "+args[0], p.out.String(), secrets)
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit code of an exited process (-1 when killed by a
// signal).
func (p *proc) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// checkOutput checks a child's output for secrets and data races.
func checkOutput(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	checkSecrets(t, what, text, secrets)
	if i := strings.Index(text, "WARNING: DATA RACE"); i >= 0 {
		t.Errorf("%s reports a data race:\n%s", what, text[i:min(len(text), i+6000)])
	}
}

func checkSecrets(t testing.TB, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a store credential (SPEC: credentials never appear in logs or errors)", what)
		}
	}
}

// result is the outcome of a one-shot pitr command.
type result struct {
	stdout, stderr string
	code           int
}

// pitr runs `pitr <command> <st.args> <args>` with st's credentials.
func (st *store) pitr(t testing.TB, command string, args ...string) result {
	t.Helper()
	return runPitr(t, []string{st.secret}, st.env, append(append([]string{command}, st.args...), args...)...)
}

func runPitr(t testing.TB, secrets, env []string, args ...string) result {
	t.Helper()
	return runPitrIn(t, "", secrets, env, args...)
}

// runPitrIn is runPitr in working directory dir ("": the test's).
func runPitrIn(t testing.TB, dir string, secrets, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Dir = dir
	cmd.Env = childEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pitr %s: still running after 2m\nstderr:\n%s", strings.Join(args, " "), tail(stderr.String(), 4000))
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run pitr %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ pitr %s → exit %d", strings.Join(args, " "), r.code)
	checkOutput(t, "pitr "+args[0], r.stdout+r.stderr, secrets)
	return r
}

// mustPitr is pitr requiring exit 0.
func (st *store) mustPitr(t testing.TB, command string, args ...string) result {
	t.Helper()
	r := st.pitr(t, command, args...)
	if r.code != 0 {
		t.Fatalf("pitr %s %s: exit %d\nstdout:\n%s\nstderr:\n%s", command, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// server is a running `pitr serve`.
type server struct {
	*proc
	url     string
	dataDir string
	st      *store
	http    *http.Client // for its API clients (see newServer)
}

// serveOpts are what a test adds to `pitr serve`.
type serveOpts struct {
	dataDir string   // default: a new temporary directory
	args    []string // after the defaults, so they override them
	env     []string
}

// startServer starts `pitr serve` on a free port with an admin password and
// a 1h save interval, and waits until GET /healthz answers 200.
func startServer(t testing.TB, st *store, o serveOpts) *server {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = filepath.Join(t.TempDir(), "session")
	}
	for attempt := 0; ; attempt++ {
		addr := "127.0.0.1:" + freePort(t)
		args := serveArgs(st, o, addr)
		s := newServer(t, startProc(t, []string{st.secret}, append(st.env, o.env...), args...), addr, o.dataDir, st)
		err := s.waitHealthy(t, 90*time.Second)
		if err == nil {
			return s
		}
		// Another process may have taken the port before pitr bound it.
		if attempt < 2 && s.exited() && strings.Contains(s.out.String(), "address already in use") {
			continue
		}
		t.Fatalf("pitr serve on %s: %v (its output follows)", addr, err)
	}
}

// serveArgs are the arguments of `pitr serve` for st, o and addr.
func serveArgs(st *store, o serveOpts, addr string) []string {
	args := []string{"serve", "--listen", addr, "--data-dir", o.dataDir,
		"--admin-password", adminPW, "--save-interval", "1h"}
	return append(append(args, st.args...), o.args...)
}

func (s *server) waitHealthy(t testing.TB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	c := s.anon(t)
	for {
		if c.Healthy(t.Context()) {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited with code %d before serving", s.exitCode())
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET /healthz not 200 after %v", timeout)
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// kill ends the server with SIGKILL, like a crash.
func (s *server) kill(t testing.TB) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop sends SIGTERM and requires the server to exit 0 within a minute.
func (s *server) stop(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM pitr serve: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatalf("pitr serve still running 1m after SIGTERM")
	}
	if code := s.exitCode(); code != 0 {
		t.Fatalf("pitr serve exited with code %d after SIGTERM, want 0", code)
	}
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// waitFor polls cond until it holds or timeout passes, then fails t naming
// what it waited for (and what cond last said).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v still waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(delay)
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// randBytes returns n pseudo-random bytes determined by seed.
func randBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// snapshotDir maps every path under dir to a digest of its content (or
// "dir"); a missing dir gives nil.
func snapshotDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}
