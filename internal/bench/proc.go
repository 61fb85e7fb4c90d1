package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/store"
	pminio "github.com/pitr-dev/pitr/store/minio"
)

// adminPassword is the admin password of the benchmarked server.
const adminPassword = "pitr-bench-admin"

// benchEnv is what every phase needs: the pitr binary, the temporary
// directory, the MinIO server and a store on the benchmark's bucket.
type benchEnv struct {
	bin     string
	dir     string
	minio   *miniotest.Server
	bucket  string
	session string
	st      *pminio.Store
	// via, when set, is the address pitr children reach the store at (a
	// counting proxy) instead of MinIO's; in-process listings go straight.
	via string
	// dataDir, when set, is pitr serve's data dir (default: data-<bucket>
	// in dir), its log beside it; startWait, when set, how long it may take
	// to answer /healthz (default 60 s; a restore on start takes longer).
	dataDir   string
	startWait time.Duration
}

// storeURL is the --store of every pitr command.
func (e *benchEnv) storeURL() string {
	addr := e.minio.Addr
	if e.via != "" {
		addr = e.via
	}
	return fmt.Sprintf("minio://%s/%s?tls=false", addr, e.bucket)
}

// openStore opens (and creates) the bucket in-process, for listing it and
// for finding the objects a restore reads.
func (e *benchEnv) openStore(ctx context.Context) (*pminio.Store, error) {
	st, err := pminio.New(ctx, pminio.Config{Endpoint: e.minio.Addr, Bucket: e.bucket,
		AccessKey: e.minio.AccessKey, SecretKey: e.minio.SecretKey, CreateBucket: true})
	if err != nil {
		return nil, fmt.Errorf("open bucket: %w", err)
	}
	return st, nil
}

// childEnv is the environment of pitr children: ours without PITR_* and
// MINIO_* settings, plus the MinIO credentials.
func (e *benchEnv) childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PITR_") && !strings.HasPrefix(kv, "MINIO_") &&
			!strings.HasPrefix(kv, "ADMIN_PASSWORD=") && !strings.HasPrefix(kv, "SERVER_PASSWORD=") {
			env = append(env, kv)
		}
	}
	return append(env, "MINIO_ROOT_USER="+e.minio.AccessKey, "MINIO_ROOT_PASSWORD="+e.minio.SecretKey)
}

// buildPitr builds ./cmd/pitr of the module we run in into bin.
func buildPitr(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", bin, "github.com/pitr-dev/pitr/cmd/pitr")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/pitr (run from the repository, or pass --pitr): %w\n%s", err, out)
	}
	return nil
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// serveProc is a running `pitr serve`.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	api  *apiClient
	log  string
}

// startServe starts pitr serve on a fresh data dir and a free port, with
// extra arguments added, and waits until /healthz answers.
func (e *benchEnv) startServe(ctx context.Context, extra ...string) (*serveProc, error) {
	port, err := miniotest.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dataDir, logPath := filepath.Join(e.dir, "data-"+e.bucket), filepath.Join(e.dir, "serve-"+e.bucket+".log")
	if e.dataDir != "" {
		dataDir, logPath = e.dataDir, e.dataDir+".log"
	}
	wait := 60 * time.Second
	if e.startWait > 0 {
		wait = e.startWait
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(e.bin, "serve", "--store", e.storeURL(), "--session", e.session,
		"--listen", addr, "--data-dir", dataDir,
		"--admin-password", adminPassword, "--save-interval", "1h")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Env = e.childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pitr serve: %w", err)
	}
	sp := &serveProc{cmd: cmd, done: make(chan struct{}), api: newAPIClient("http://" + addr), log: logPath}
	go func() {
		_ = cmd.Wait()
		close(sp.done)
	}()
	deadline := clk.Now().Add(wait)
	for {
		if sp.api.healthy(ctx) {
			return sp, nil
		}
		select {
		case <-sp.done:
			return nil, fmt.Errorf("pitr serve exited before serving:\n%s", tail(logPath))
		case <-ctx.Done():
			sp.kill()
			return nil, ctx.Err()
		case <-clk.After(50 * time.Millisecond):
		}
		if clk.Now().After(deadline) {
			sp.kill()
			return nil, fmt.Errorf("pitr serve not healthy after %v:\n%s", wait, tail(logPath))
		}
	}
}

// stop sends SIGTERM (a final save, then exit) and waits, returning how long
// the shutdown took.
func (sp *serveProc) stop() (time.Duration, error) {
	start := clk.Now()
	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-sp.done:
	case <-clk.After(2 * time.Minute):
		sp.kill()
		return 0, errors.New("pitr serve did not stop within 2 minutes of SIGTERM")
	}
	d := clk.Since(start)
	if !sp.cmd.ProcessState.Success() {
		return d, fmt.Errorf("pitr serve exited with %v:\n%s", sp.cmd.ProcessState, tail(sp.log))
	}
	return d, nil
}

func (sp *serveProc) kill() {
	_ = sp.cmd.Process.Kill()
	<-sp.done
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(bytes.TrimSpace(b))
}

// procMem is a process's memory from /proc/<pid>/status, in bytes.
type procMem struct {
	hwm int64 // VmHWM: peak resident set size
	rss int64 // VmRSS: resident set size now
}

func readProcMem(pid int) (procMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, fmt.Errorf("read peak RSS: %w", err)
	}
	defer f.Close()
	var m procMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			m.hwm = n << 10
		case "VmRSS":
			m.rss = n << 10
		}
	}
	if m.hwm == 0 {
		return m, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return m, sc.Err()
}

// bucketState is every object of the bucket at one moment.
type bucketState map[string]store.ObjectInfo

func (e *benchEnv) snapshotBucket(ctx context.Context) (bucketState, error) {
	s := bucketState{}
	err := e.st.List(ctx, store.ListOptions{}, func(oi store.ObjectInfo) error {
		s[oi.Key] = oi
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bucket: %w", err)
	}
	return s, nil
}

// newSince returns the objects of s that before lacks or held differently
// (rewritten). The writer claim (sessions/<s>/claim.json) is left out: the
// server renews it every 10 s and releases it on stop; it is not save data.
func (s bucketState) newSince(before bucketState) []store.ObjectInfo {
	var out []store.ObjectInfo
	for k, oi := range s {
		if strings.HasSuffix(k, "/claim.json") {
			continue
		}
		old, ok := before[k]
		if !ok || old.ETag != oi.ETag || !old.ModTime.Equal(oi.ModTime) || old.Size != oi.Size {
			out = append(out, oi)
		}
	}
	return out
}

// machine describes where the benchmark ran.
type machine struct {
	cpus      int
	cpuModel  string
	memTotal  string
	kernel    string
	goVersion string
	minio     string
	pitr      string
	commit    string
}

func describeMachine(ctx context.Context, bin string) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), pitr: bin}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.cpus = n
		}
	}
	if out, err := exec.CommandContext(ctx, goTool(), "version").Output(); err == nil {
		m.goVersion = strings.TrimSpace(string(out))
	}
	m.cpuModel = procField("/proc/cpuinfo", "model name")
	m.memTotal = procField("/proc/meminfo", "MemTotal")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(m.memTotal, " kB"), 10, 64); err == nil {
		m.memTotal = fmt.Sprintf("%.1f GB", float64(kb)*1024/1e9)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.minio = "unknown"
	if p, err := miniotest.FindBinary(); err == nil {
		m.minio = p
		if out, err := exec.CommandContext(ctx, p, "--version").Output(); err == nil {
			first, _, _ := strings.Cut(string(out), "\n")
			m.minio += " (" + strings.TrimSpace(first) + ")"
		}
	}
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// httpTimeout bounds one API request; a full save of a big graph is the
// slowest.
const httpTimeout = 10 * time.Minute

func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: tr, Timeout: httpTimeout}
}
