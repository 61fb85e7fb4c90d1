package miniotest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

var shared struct {
	once sync.Once
	srv  *Server
	dir  string
	err  error
}

// Shared returns the package's shared server, starting it on first use. Its
// tests must not Stop or Restart it, and should each use their own bucket
// (see Bucket). A package calling Shared must run its tests through Main:
//
//	func TestMain(m *testing.M) { miniotest.Main(m) }
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "pitr-miniotest-")
		if shared.err == nil {
			shared.srv, shared.err = Launch(shared.dir)
		}
	})
	if shared.err != nil {
		t.Fatalf("miniotest: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests, then stops the shared server, removes its data and
// exits with the tests' exit code.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "miniotest: %v\n", err)
		}
	}
	os.Exit(code)
}
