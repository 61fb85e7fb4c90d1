package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
)

// benchBinary makes a temporary directory for a benchmark and the pitr
// binary to measure (o.pitr, or one built into the directory); cleanup
// removes the directory.
func benchBinary(ctx context.Context, o options, name string, logf func(string, ...any)) (dir, bin string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "pitr-bench-"+name+"-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	bin = o.pitr
	if bin == "" {
		bin = filepath.Join(dir, "pitr")
		logf("building pitr into %s", bin)
		if err := buildPitr(ctx, bin); err != nil {
			cleanup()
			return "", "", nil, err
		}
	}
	return dir, bin, cleanup, nil
}

// fileServe is a `pitr serve` on a file store in dir, initialized.
type fileServe struct {
	cmd  *exec.Cmd
	addr string
	log  bytes.Buffer
}

// startFileServe starts bin serve on a file store under dir with args
// added, waits until it answers and initializes the session.
func startFileServe(ctx context.Context, bin, dir string, args ...string) (*fileServe, error) {
	port, err := miniotest.FreePort()
	if err != nil {
		return nil, err
	}
	fs := &fileServe{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	all := append([]string{"serve", "--store", "file://" + filepath.Join(dir, "store"), "--data-dir", filepath.Join(dir, "data"),
		"--listen", fs.addr, "--admin-password", adminPassword, "--save-interval", "1h"}, args...)
	fs.cmd = exec.Command(bin, all...)
	fs.cmd.Stdout, fs.cmd.Stderr = &fs.log, &fs.log
	if err := fs.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pitr serve: %w", err)
	}
	api := newAPIClient("http://" + fs.addr)
	for deadline := clk.Now().Add(time.Minute); !api.healthy(ctx); clk.Sleep(50 * time.Millisecond) {
		if clk.Now().After(deadline) {
			fs.kill()
			return nil, fmt.Errorf("pitr serve not healthy after 1m:\n%s", fs.log.String())
		}
	}
	if err := api.initSession(ctx); err != nil {
		fs.kill()
		return nil, err
	}
	return fs, nil
}

func (fs *fileServe) kill() { _ = fs.cmd.Process.Kill(); _ = fs.cmd.Wait() }

// benchLogf is the benchmarks' progress logger.
func benchLogf(w io.Writer) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%s  "+format+"\n", append([]any{clk.Now().Format("15:04:05.000")}, args...)...)
	}
}
