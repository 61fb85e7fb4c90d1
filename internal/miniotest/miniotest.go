// Package miniotest runs a real MinIO server binary for tests: one process
// per server on 127.0.0.1, a random free port, a temporary data directory and
// random root credentials, stopped when the test ends.
//
// MinIO is AGPL-licensed, so it is never imported, only run. The binary is
// found through $PITR_MINIO_BIN, then "minio" on $PATH, then $GOBIN/minio and
// $GOPATH/bin/minio. When it is missing the test fails (never skips) and says
// how to install it:
//
//	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// Start gives a test its own server (which it may Stop and Restart); Shared
// gives every test of a package one server, closed by Main from TestMain.
package miniotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
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

	"github.com/pitr-dev/pitr/clock"
)

// InstallHint is the command that installs the MinIO version pitr tests with.
const InstallHint = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// startTimeout bounds how long a server may take to answer its health check.
const startTimeout = 60 * time.Second

// Server is a running (or stopped) MinIO process.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Endpoint is "http://127.0.0.1:port".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey string
	SecretKey string
	// DataDir holds the objects; it survives Stop and Restart.
	DataDir string

	bin     string
	logPath string
	tb      testing.TB // of Start, to fail instead of panicking

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Start starts a MinIO server for t and stops it when t ends. It fails t if
// the binary is missing or the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	s.tb = t
	t.Cleanup(s.Stop)
	return s
}

// Launch starts a MinIO server keeping its data and log under dir, for use
// outside a test (TestMain). The caller must Stop it.
func Launch(dir string) (*Server, error) {
	bin, err := FindBinary()
	if err != nil {
		return nil, err
	}
	s := &Server{
		AccessKey: "pitr" + randomHex(8),
		SecretKey: randomHex(20),
		DataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "minio.log"),
		bin:       bin,
	}
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return nil, err
	}
	// Another process may take the free port before MinIO binds it; pick
	// another one then.
	for attempt := 0; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		s.Endpoint = "http://" + s.Addr
		err = s.start()
		if err == nil {
			return s, nil
		}
		if attempt == 2 || !errors.Is(err, errExited) {
			return nil, err
		}
	}
}

// FindBinary returns the path of the MinIO binary, or an error saying how to
// install it.
func FindBinary() (string, error) {
	if p := os.Getenv("PITR_MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PITR_MINIO_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var tried []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		tried = append(tried, filepath.Join(gobin, "minio"))
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		gopath = build.Default.GOPATH
	}
	for _, dir := range filepath.SplitList(gopath) {
		tried = append(tried, filepath.Join(dir, "bin", "minio"))
	}
	for _, p := range tried {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio binary not found (looked at $PITR_MINIO_BIN, minio on $PATH, %s); install it with: %s",
		strings.Join(tried, ", "), InstallHint)
}

var errExited = errors.New("minio exited")

// start runs the process and waits until it serves requests.
func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "\n=== %s starting minio on %s\n", wall.Now().Format(time.RFC3339Nano), s.Addr)
	cmd := exec.Command(s.bin, "server", "--quiet", "--address", s.Addr, s.DataDir)
	cmd.Env = append(childEnv(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(done); err != nil {
		s.kill()
		return fmt.Errorf("%w\n--- minio log (%s) ---\n%s", err, s.logPath, s.logTail())
	}
	return nil
}

// childEnv is the parent's environment without MINIO_* settings, which
// would change how the server behaves.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls the liveness endpoint until the server answers 200 with
// its object layer initialised, the process exits, or startTimeout passes.
func (s *Server) waitReady(done <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := s.Endpoint + "/minio/health/live"
	deadline := wall.Now().Add(startTimeout)
	delay := 10 * time.Millisecond
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") != "offline" {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%w before serving on %s", errExited, s.Addr)
		case <-wall.After(delay):
		}
		if wall.Now().After(deadline) {
			return fmt.Errorf("minio on %s not ready after %v", s.Addr, startTimeout)
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// Stop ends the server process gracefully (SIGTERM, then SIGKILL after 10s)
// and waits for it to exit. Data stays; Restart brings the server back.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		_ = cmd.Process.Kill() // no SIGTERM on this system
	}
	select {
	case <-done:
	case <-wall.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill ends the server process at once with SIGKILL, like a crash.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same address, data directory and
// credentials, stopping it first if it runs. If the server does not come
// back it fails the test of Start (call it from the test's goroutine), or
// panics for a server from Launch; TryRestart returns the error instead.
func (s *Server) Restart() {
	if err := s.TryRestart(); err != nil {
		if s.tb != nil {
			s.tb.Helper()
			s.tb.Fatalf("miniotest: %v", err)
		}
		panic(fmt.Sprintf("miniotest: %v", err))
	}
}

// TryRestart is Restart returning its error.
func (s *Server) TryRestart() error {
	s.Stop()
	var err error
	// The old process's socket may linger for a moment after it exits.
	for range 3 {
		if err = s.start(); err == nil || !errors.Is(err, errExited) {
			return err
		}
	}
	return fmt.Errorf("restart minio on %s: %w", s.Addr, err)
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Bucket returns a fresh random bucket name (lowercase, valid for S3). The
// bucket itself is not created.
func Bucket(t testing.TB) string {
	t.Helper()
	return "pitr-test-" + randomHex(8)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// FreePort returns a TCP port on 127.0.0.1 that is free now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// wall paces the waits for the MinIO process, which runs in real time.
var wall = clock.Real()
