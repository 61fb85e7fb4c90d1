package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Peak RSS of a child process, measured right.
//
// On Linux, the Maxrss that wait4 reports for a child started by Go's
// os/exec is at least the parent's own peak RSS at the time: Go starts
// children with clone(CLONE_VM|CLONE_VFORK), so until exec the child runs on
// the parent's address space, and exec records that address space's
// high-water mark into the child's maxrss. (Measured: a `true` started from
// a Go process holding 300 MB reports Maxrss 300 MB.) This benchmark holds
// tens of MB, which would be charged to `pitr restore`.
//
// So the child is started through a helper: this same binary, re-executed
// with helperEnv set. The helper is small when it starts pitr, so the
// inherited mark is a few MB, below pitr's own peak; it times the child,
// and writes its wall time and Maxrss as JSON to the file helperEnv names.

// helperEnv, when set, makes pitr-bench run its arguments as a command and
// report on it into the file it names.
const helperEnv = "PITR_BENCH_HELPER_REPORT"

// helperReport is what the helper writes.
type helperReport struct {
	WallNS    int64 `json:"wall_ns"`
	MaxRSSKiB int64 `json:"maxrss_kib"`
	ExitCode  int   `json:"exit_code"`
}

// helperMain runs args (stdout and stderr inherited) and reports on it; it
// returns the exit code for the helper.
func helperMain(args []string, reportPath string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "pitr-bench helper: no command")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, stdout, stderr
	start := clk.Now()
	err := cmd.Run()
	wall := clk.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintln(stderr, "pitr-bench helper:", err)
		return 2
	}
	rep := helperReport{WallNS: int64(wall), ExitCode: cmd.ProcessState.ExitCode()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rep.MaxRSSKiB = int64(ru.Maxrss) // KiB on Linux
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(reportPath, b, 0o644); err != nil {
		fmt.Fprintln(stderr, "pitr-bench helper:", err)
		return 2
	}
	return rep.ExitCode
}

// runMeasured runs args with env through the helper and returns the
// child's wall time, peak RSS in bytes and combined output.
func runMeasured(ctx context.Context, reportPath string, env, args []string) (time.Duration, int64, string, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, "", fmt.Errorf("find own binary for the rusage helper: %w", err)
	}
	_ = os.Remove(reportPath)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(env, helperEnv+"="+reportPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	b, err := os.ReadFile(reportPath)
	switch {
	case err != nil && runErr != nil:
		return 0, 0, out.String(), fmt.Errorf("%s: %w (no report: %w):\n%s", strings.Join(args, " "), runErr, err, out.String())
	case err != nil:
		return 0, 0, out.String(), fmt.Errorf("%s: no report: %w:\n%s", strings.Join(args, " "), err, out.String())
	}
	var rep helperReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return 0, 0, out.String(), fmt.Errorf("helper report: %w", err)
	}
	if runErr != nil || rep.ExitCode != 0 {
		return 0, 0, out.String(), fmt.Errorf("%s: exit %d:\n%s", strings.Join(args, " "), rep.ExitCode, out.String())
	}
	return time.Duration(rep.WallNS), rep.MaxRSSKiB << 10, out.String(), nil
}
