// Package bench is the implementation of the pitr-bench command
// (cmd/pitr-bench, a thin main that calls Main). It is a tool, not part of
// pitr: no product package imports it.
//
// pitr-bench measures pitr end to end, as a user sees it: it starts a
// real MinIO (internal/miniotest) and the pitr binary as child processes,
// loads a generated Blender-like graph (internal/graphgen) through the HTTP
// API, and measures, in one run:
//
//   - a full save: bytes uploaded, chunks, the server's duration and the
//     client's wall time;
//   - saves after changing 1 % of the nodes (several seeds): bytes uploaded
//     ÷ bytes changed, and duration ÷ the full save's duration;
//   - a no-op save: nothing uploaded, no new object in the bucket;
//   - the peak RSS of `pitr serve` against the size of the graph;
//   - `pitr restore --at latest` against a plain parallel GET of exactly the
//     objects that restore needs (median of alternating runs), and the
//     restore's peak RSS.
//
// It prints a Markdown report with the figures, the targets and
// whether each was met; --write also writes the report to a file
// (BENCHMARKS.md), keeping the file's history section. The figures are
// ratios measured in one run on one machine; nothing here asserts a
// performance target.
//
// With --history it runs the history benchmark instead (history.go): a
// store with --saves (1000) saves of the graph, built in-process, and the
// wall time and store requests (counted on the wire by a proxy) of
// `pitr prune`, `pitr gc`, `pitr verify` and `pitr restore --at` on it.
// Its --write replaces only the history section of the file (between two
// HTML comment lines), appending it when the file has none.
//
// With --requests it runs the requests benchmark instead (requests.go):
// store requests by kind, bytes and wall time of saves and restores when
// every request costs a latency (--latency, "0ms,20ms"), added by the
// counting proxy, for each graph size of --nodes (a list with --requests),
// with a history of --saves saves; its --write replaces only its section.
//
// With --scale it runs the scale benchmark instead (scale.go): for each
// size of --scale-sizes ("2000,20000,1g"; "1g" is about 1 GB of large
// meshes, generated as they are PUT), the load, a full, a no-op, 1-node and
// a 1 % save, the metadata a small save writes, `pitr restore` and a
// restore on start of a second `pitr serve` with their peak RSS; once, the
// journal's PUT throughput with and without fsync. Its --write replaces
// only its section.
//
// Usage, from the repository root:
//
//	go run ./cmd/pitr-bench --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --history --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --requests --write BENCHMARKS.md
//	go run ./cmd/pitr-bench --scale --write BENCHMARKS.md
//
// Flags: --nodes (2000), --seed (1), --changes (5), --runs (3),
// --pitr (a built pitr binary; default: build ./cmd/pitr), --write PATH,
// --keep (keep the temporary directory, with the MinIO and pitr logs),
// --history, --saves (1000; with --history and --requests), --requests,
// --latency (with --requests), --scale, --scale-sizes (with --scale),
// --uploads N and --journal N (the uploads and journal benchmarks).
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/internal/miniotest"
)

// clk is the benchmarks' one source of time (package clock; the linter
// bans the time package's clock functions elsewhere).
var clk = clock.Real()

// saverParallel is how many chunks pitr's saver uploads at once (its
// default; pitr serve has no flag for it).
const saverParallel = 16

type options struct {
	nodes   int
	seed    uint64
	changes int
	runs    int
	pitr    string
	write   string
	keep    bool
	history bool // --history: the history benchmark (history.go) instead
	saves   int  // --saves: saves in the history
	uploads int  // --uploads: concurrent maximum-size uploads (0: not this benchmark)
	journal int  // --journal: PUTs of the journal benchmark (0: not this benchmark)

	nodeList  intList         // --nodes as given (a list with --requests); nodes is its first
	requests  bool            // --requests: the requests benchmark (requests.go) instead
	latencies []time.Duration // --latency: with --requests
	maxUnused float64         // --max-unused: with --requests, gc's (0: its default)

	scale      bool        // --scale: the scale benchmark (scale.go) instead
	scaleSizes []scaleSize // --scale-sizes: with --scale
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l *intList) String() string {
	var s []string
	for _, n := range *l {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	ns, err := parseInts(v)
	if err != nil {
		return err
	}
	*l = ns
	return nil
}

// Main runs pitr-bench with the command-line arguments args (without the
// program name), writing the report to stdout and progress and errors to
// stderr, and returns the process's exit code: 0, 1 when a benchmark
// failed, 2 for a bad command line.
func Main(args []string, stdout, stderr io.Writer) int {
	if report := os.Getenv(helperEnv); report != "" {
		return helperMain(args, report, stdout, stderr)
	}
	o, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runner := run
	switch {
	case o.scale:
		runner = runScale
	case o.history:
		runner = runHistory
	case o.requests:
		runner = runRequests
	case o.uploads > 0:
		runner = runUploads
	case o.journal > 0:
		runner = runJournal
	}
	if err := runner(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "pitr-bench:", err)
		return 1
	}
	return 0
}

// parseFlags parses the command line into options. A code >= 0 means stop
// and exit with it: 0 after --help, 2 for a bad command line (the problem
// written to stderr).
func parseFlags(args []string, stderr io.Writer) (options, int) {
	fs := flag.NewFlagSet("pitr-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{nodeList: intList{2000}}
	latency := "0ms,20ms"
	sizes := defaultScaleSet
	fs.Var(&o.nodeList, "nodes", "nodes in the generated graph (with --requests: a list, e.g. 2000,20000)")
	fs.Uint64Var(&o.seed, "seed", 1, "graphgen seed of the graph; the 1 % changes use seed+1 … seed+changes")
	fs.IntVar(&o.changes, "changes", 5, "number of 1 % change saves")
	fs.IntVar(&o.runs, "runs", 3, "restore and plain-GET runs each (alternating; the median is reported)")
	fs.StringVar(&o.pitr, "pitr", "", "pitr binary to measure (default: go build ./cmd/pitr into a temporary directory)")
	fs.StringVar(&o.write, "write", "", "also write the Markdown report to this file (e.g. BENCHMARKS.md)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (MinIO data, logs, data dirs)")
	fs.BoolVar(&o.history, "history", false, "run the history benchmark instead (prune, gc, verify, restore --at on --saves saves); with --write it replaces only its section of the file")
	fs.IntVar(&o.saves, "saves", 1000, "with --history and --requests: saves in the history")
	fs.IntVar(&o.journal, "journal", 0, "run the journal benchmark instead: 16 clients PUT this many small nodes, with and without the journal's fsync; with --write it replaces only its section")
	fs.IntVar(&o.uploads, "uploads", 0, "run the uploads benchmark instead: this many clients PUT a 64 MiB node at once (peak RSS of serve); with --write it replaces only its section")
	fs.BoolVar(&o.requests, "requests", false, "run the requests benchmark instead (store requests and wall time of saves and restores at each --latency); with --write it replaces only its section")
	fs.StringVar(&latency, "latency", latency, "with --requests: latencies added to every store request, a comma-separated list")
	fs.Float64Var(&o.maxUnused, "max-unused", 0, "with --requests: gc's --max-unused as a fraction (0: gc's default; 1: no repacking)")
	fs.BoolVar(&o.scale, "scale", false, "run the scale benchmark instead (saves, restores and peak RSS at each --scale-sizes; --journal sets its journal PUTs); with --write it replaces only its section")
	fs.StringVar(&sizes, "scale-sizes", sizes, "with --scale: graph sizes, node counts or GB of large meshes (e.g. 0.5g), comma-separated")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, 0
		}
		return o, 2
	}
	o.nodes = o.nodeList[0]
	if err := o.check(fs.NArg(), latency, sizes); err != nil {
		fmt.Fprintln(stderr, "pitr-bench:", err)
		return o, 2
	}
	return o, -1
}

// check validates the options and completes them from the --latency and
// --scale-sizes lists; nargs is the number of arguments after the flags.
func (o *options) check(nargs int, latency, sizes string) error {
	if o.changes < 1 || o.runs < 1 || nargs > 0 {
		return errors.New("--nodes, --changes and --runs must be positive; no arguments")
	}
	if len(o.nodeList) > 1 && !o.requests {
		return errors.New("--nodes takes a list only with --requests")
	}
	if o.requests {
		var err error
		if o.latencies, err = parseDurations(latency); err != nil {
			return fmt.Errorf("--latency: %w", err)
		}
		if o.saves < o.changes+3 {
			return errors.New("with --requests, --saves must be at least --changes + 3")
		}
	}
	if o.scale {
		var err error
		if o.scaleSizes, err = parseScaleSizes(sizes); err != nil {
			return fmt.Errorf("--scale-sizes: %w", err)
		}
	}
	if o.history && o.saves < 20 {
		return errors.New("--saves must be at least 20")
	}
	return nil
}

// run does the whole benchmark; progress goes to logw, the report to out.
func run(ctx context.Context, o options, out, logw io.Writer) (err error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(logw, "%s  "+format+"\n", append([]any{clk.Now().Format("15:04:05.000")}, args...)...)
	}
	dir, err := os.MkdirTemp("", "pitr-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	res := &results{opts: o, started: clk.Now(), loadStart: loadAvg()}
	res.command = commandLine(o)

	bin := o.pitr
	if bin == "" {
		bin = filepath.Join(dir, "pitr")
		logf("building pitr into %s", bin)
		if err := buildPitr(ctx, bin); err != nil {
			return err
		}
	}
	res.machine = describeMachine(ctx, bin)

	logf("starting MinIO")
	mdir := filepath.Join(dir, "minio")
	srv, err := miniotest.Launch(mdir)
	if err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	defer srv.Stop()
	env := benchEnv{bin: bin, dir: dir, minio: srv, bucket: "pitr-bench", session: "bench"}
	if env.st, err = env.openStore(ctx); err != nil {
		return err
	}

	nodes := graphgen.Generate(o.seed, o.nodes)
	res.graph = describeGraph(nodes)
	logf("graph: %d nodes, %d data bytes", len(nodes), res.graph.dataBytes)

	if err := benchSaves(ctx, &env, res, nodes, logf); err != nil {
		return err
	}
	if err := benchFullSaves(ctx, &env, res, nodes, logf); err != nil {
		return err
	}
	if err := benchRestore(ctx, &env, res, logf); err != nil {
		return err
	}
	res.finished, res.loadEnd = clk.Now(), loadAvg()

	report := res.markdown()
	if _, err := io.WriteString(out, report); err != nil {
		return err
	}
	if o.write != "" {
		// The history section (--history) of the file, if any, is kept.
		if err := writeMainReport(o.write, report); err != nil {
			return err
		}
		logf("wrote %s", o.write)
	}
	return nil
}

// benchSaves runs pitr serve, loads the graph and measures the full, the
// 1 % change and the no-op saves and the server's peak RSS.
func benchSaves(ctx context.Context, env *benchEnv, res *results, nodes []graphgen.Node, logf func(string, ...any)) (err error) {
	logf("starting pitr serve")
	sv, err := env.startServe(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if sv != nil {
			sv.kill()
		}
	}()
	if err := sv.api.initSession(ctx); err != nil {
		return err
	}
	start := clk.Now()
	if err := sv.api.putNodes(ctx, nodes, 4); err != nil {
		return err
	}
	res.loadWall = clk.Since(start)
	logf("loaded %d nodes in %v", len(nodes), res.loadWall.Round(time.Millisecond))
	if res.rssAfterLoad, err = readProcMem(sv.cmd.Process.Pid); err != nil {
		return err
	}

	if res.full, err = env.measureSave(ctx, sv.api); err != nil {
		return fmt.Errorf("full save: %w", err)
	}
	res.fulls = append(res.fulls, res.full)
	logf("full save: %s", res.full)
	if res.rssAfterFull, err = readProcMem(sv.cmd.Process.Pid); err != nil {
		return err
	}

	cur, err := benchChanges(ctx, env, sv.api, res, nodes, logf)
	if err != nil {
		return err
	}

	if res.noop, err = env.measureSave(ctx, sv.api); err != nil {
		return fmt.Errorf("no-op save: %w", err)
	}
	logf("no-op save: %s", res.noop)

	if res.serveRSS, err = readProcMem(sv.cmd.Process.Pid); err != nil {
		return err
	}
	res.serveNodes, err = sv.api.nodeCount(ctx)
	if err != nil {
		return err
	}
	// A clean stop makes a final save, which must find nothing changed.
	before, err := env.snapshotBucket(ctx)
	if err != nil {
		return err
	}
	res.shutdownWall, err = sv.stop()
	sv = nil
	if err != nil {
		return fmt.Errorf("stop pitr serve: %w", err)
	}
	after, err := env.snapshotBucket(ctx)
	if err != nil {
		return err
	}
	res.shutdownNew = len(after.newSince(before))
	if res.shutdownNew > 0 {
		return errors.New("the shutdown save wrote objects although nothing changed")
	}
	res.finalGraphBytes = dataBytes(cur)
	return nil
}

// benchChanges changes 1 % of the nodes and saves, --changes times (seeds
// seed+1 …), recording each save in res.changes; it returns the graph after
// the changes.
func benchChanges(ctx context.Context, env *benchEnv, api *apiClient, res *results, nodes []graphgen.Node, logf func(string, ...any)) ([]graphgen.Node, error) {
	cur := nodes
	for i := 1; i <= res.opts.changes; i++ {
		seed := res.opts.seed + uint64(i)
		changed, changedBytes := graphgen.Mutate(cur, seed, 0.01)
		if err := api.putNodes(ctx, changed, 4); err != nil {
			return nil, err
		}
		cur = graphgen.Apply(cur, changed)
		m, err := env.measureSave(ctx, api)
		if err != nil {
			return nil, fmt.Errorf("change save (seed %d): %w", seed, err)
		}
		c := changeResult{seed: seed, nodes: len(changed), changedBytes: int64(changedBytes), save: m}
		for _, nd := range changed {
			c.nodeBytes += int64(len(nd.Data))
		}
		res.changes = append(res.changes, c)
		logf("1 %% change, seed %d: %d nodes, %d bytes changed: %s", seed, len(changed), changedBytes, m)
	}
	return cur, nil
}

// benchFullSaves repeats the full save, each time with a fresh pitr serve,
// data dir and bucket, alternating with plain PUTs of the same objects into
// fresh buckets (with and without a HEAD first): runs of each in all, the
// first full save being benchSaves's.
func benchFullSaves(ctx context.Context, env *benchEnv, res *results, nodes []graphgen.Node, logf func(string, ...any)) error {
	keys := res.full.newChunkKeys
	bodies, total, err := env.readObjects(ctx, keys)
	if err != nil {
		return err
	}
	res.put = putBaseline{objects: len(keys), bytes: total, parallel: saverParallel}
	for i := range res.opts.runs {
		if i > 0 {
			sub := *env
			sub.bucket = fmt.Sprintf("%s-full-%d", env.bucket, i+1)
			if sub.st, err = sub.openStore(ctx); err != nil {
				return err
			}
			m, err := sub.fullSaveOnce(ctx, nodes)
			if err != nil {
				return fmt.Errorf("full save %d: %w", i+1, err)
			}
			if m.answer.BytesUploaded != res.full.answer.BytesUploaded {
				return fmt.Errorf("full save %d uploaded %d bytes, the first %d", i+1, m.answer.BytesUploaded, res.full.answer.BytesUploaded)
			}
			res.fulls = append(res.fulls, m)
		}
		for _, head := range []bool{false, true} {
			bucket := fmt.Sprintf("%s-put-%d-%t", env.bucket, i+1, head)
			d, err := env.plainPut(ctx, bucket, keys, bodies, saverParallel, head)
			if err != nil {
				return fmt.Errorf("plain PUT baseline: %w", err)
			}
			if head {
				res.put.headPut = append(res.put.headPut, d)
			} else {
				res.put.put = append(res.put.put, d)
			}
		}
		logf("run %d: full save %d ms; plain PUT %v, HEAD+PUT %v", i+1, res.fulls[i].answer.DurationMS,
			res.put.put[i].Round(time.Millisecond), res.put.headPut[i].Round(time.Millisecond))
	}
	return nil
}

// fullSaveOnce starts pitr serve on env's (fresh) bucket, loads nodes,
// saves once, and stops the server.
func (e *benchEnv) fullSaveOnce(ctx context.Context, nodes []graphgen.Node) (saveMeasure, error) {
	sv, err := e.startServe(ctx)
	if err != nil {
		return saveMeasure{}, err
	}
	defer func() {
		if sv != nil {
			sv.kill()
		}
	}()
	if err := sv.api.initSession(ctx); err != nil {
		return saveMeasure{}, err
	}
	if err := sv.api.putNodes(ctx, nodes, 4); err != nil {
		return saveMeasure{}, err
	}
	m, err := e.measureSave(ctx, sv.api)
	if err != nil {
		return m, err
	}
	_, err = sv.stop()
	sv = nil
	return m, err
}

func dataBytes(nodes []graphgen.Node) int64 {
	var n int64
	for _, nd := range nodes {
		n += int64(len(nd.Data))
	}
	return n
}

func commandLine(o options) string {
	args := []string{"go run ./cmd/pitr-bench"}
	if o.nodes != 2000 {
		args = append(args, fmt.Sprintf("--nodes %d", o.nodes))
	}
	if o.seed != 1 {
		args = append(args, fmt.Sprintf("--seed %d", o.seed))
	}
	if o.changes != 5 {
		args = append(args, fmt.Sprintf("--changes %d", o.changes))
	}
	if o.runs != 3 {
		args = append(args, fmt.Sprintf("--runs %d", o.runs))
	}
	if o.write != "" {
		args = append(args, "--write "+o.write)
	}
	return strings.Join(args, " ")
}
