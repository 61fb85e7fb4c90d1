package bench

// The history benchmark (--history): what prune, gc, verify and
// restore --at cost on a store with a long history.
//
// Building the history. 1,000 saves through HTTP would take many minutes,
// so the history is built in-process with the product's own saver
// (replicate.Saver on a session.Session, store/minio on the benchmark's
// MinIO): the graph is loaded once, then before every save after the first
// 0.1–1 % of the nodes change (graphgen.Mutate, a seeded fraction per save)
// and the saver saves. The saver runs on a fake clock that advances 10
// minutes per save, so 1,000 saves span about a week of save times and
// retention rules have hours and days to work on.
//
// The savers keep the default gc grace: a format 2 saver relies on no
// chunk because it exists, only on the packs its newest save names, so it
// uploads nothing again however old they are (package gc), and the
// grace's only use in a save, its deadline, runs on the real clock. gc
// below runs with --grace 0s, since the week of saves took minutes.
//
// Measuring. Every command is the built pitr binary against that store,
// black-box, run twice from the same state: once straight against MinIO,
// for its wall time, and once through a counting reverse proxy
// (countingProxy), for its store requests on the wire. Prune and gc delete,
// so the MinIO data directory is copied after the build and put back
// between the two passes (MinIO stopped meanwhile); both passes run the
// same sequence of commands, and their outputs must agree.
//
// Restores: three stores are built side by side from the same sequence of
// graphs (the first saves of each are the same content): 10, 100 and 1,000
// saves. Restoring save #5 of each shows that the request count does not
// depend on the length of the history; the middle save of each, and saves
// #10 and #990 of the long one, show the same for other positions.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store/counting"
)

const (
	// historyInterval is the fake time between two saves.
	historyInterval = 10 * time.Minute
	// historySeedSalt separates the history's mutation stream from other
	// uses of --seed.
	historySeedSalt = 0x68697374 // "hist"
	// minChange and maxChange bound the share of nodes changed per save.
	minChange, maxChange = 0.001, 0.01
	// subsetPercent is verify's --read-data-subset.
	subsetPercent = "5%"
	// restoreRuns is how often the timed pass runs each restore (the
	// median is reported); everything else runs once per pass.
	restoreRuns = 3
)

// fakeClock is the savers' clock during the build: the wall clock moved to
// the history's save times (Set), so that saves are stamped with them
// while the durations the savers measure stay real.
type fakeClock struct {
	clock.Clock // the wall clock
	offset      atomic.Int64
}

func newFakeClock() *fakeClock { return &fakeClock{Clock: clock.Real()} }

func (c *fakeClock) Now() time.Time                  { return c.Clock.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *fakeClock) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }
func (c *fakeClock) Set(t time.Time)                 { c.offset.Store(int64(t.Sub(c.Clock.Now()))) }

// histSave is one save of a built history.
type histSave struct {
	n       int // 1-based position in the history
	id      string
	t       time.Time
	up      int64 // bytes uploaded
	chunks  int   // chunks uploaded
	durMS   int64 // the saver's duration
	changed int   // nodes changed before it (0 for the first)
	changeB int   // data bytes those changes differ by
	// filled for the saves the benchmark restores: list chunks (format 1)
	// or tree nodes and packs (format 2), distinct data chunks
	listChunks, treeNodes, packs, dataChunks int
}

// histStore is one store holding one history.
type histStore struct {
	env    benchEnv // its own bucket
	length int
	saver  *replicate.Saver
	cnt    *counting.Store
	saves  []histSave
	// after the build
	objects, chunkObjects int
	bytes                 int64
}

// histBuild describes the build phase.
type histBuild struct {
	wall   time.Duration
	stores []*histStore // ascending length; the last is the main one
	first  time.Time    // fake time of save #1
	nodes  int
	data   int64
}

func (b *histBuild) main() *histStore { return b.stores[len(b.stores)-1] }

// historyLengths are the lengths of the histories built: 10 and 100 (when
// shorter than saves) and saves.
func historyLengths(saves int) []int {
	var ls []int
	for _, l := range []int{10, 100} {
		if l < saves {
			ls = append(ls, l)
		}
	}
	return append(ls, saves)
}

// buildHistories fills one bucket per history length through in-process
// savers sharing one session and one fake clock.
func buildHistories(ctx context.Context, base *benchEnv, o options, nodes []graphgen.Node, logf func(string, ...any)) (*histBuild, error) {
	fake := newFakeClock()
	b := &histBuild{nodes: len(nodes), data: dataBytes(nodes)}
	lengths := historyLengths(o.saves)
	b.first = clk.Now().UTC().Truncate(time.Minute).Add(-time.Duration(o.saves) * historyInterval)
	sess := session.New()
	if err := sess.Init(); err != nil {
		return nil, err
	}
	admin := session.Actor{User: "bench", Admin: true}
	put := func(nds []graphgen.Node) error {
		for _, nd := range nds {
			if _, err := sess.Put(admin, nd.ID, session.NodeInput{Type: nd.Type, Owner: nd.Owner, Deps: nd.Deps, Data: nd.Data}); err != nil {
				return fmt.Errorf("put node %s: %w", nd.ID, err)
			}
		}
		return nil
	}
	if err := put(nodes); err != nil {
		return nil, err
	}
	for _, l := range lengths {
		hs := &histStore{env: *base, length: l}
		hs.env.bucket = fmt.Sprintf("pitr-history-%d", l)
		st, err := hs.env.openStore(ctx)
		if err != nil {
			return nil, err
		}
		hs.env.st = st
		hs.cnt = counting.New(st)
		hs.saver = replicate.New(sess, replicate.Config{
			Store: hs.cnt, Session: base.session, Host: "pitr-bench", StoreURL: hs.env.storeURL(),
			Clock: fake, Logger: slog.New(slog.DiscardHandler),
		})
		b.stores = append(b.stores, hs)
	}

	rng := rand.New(rand.NewPCG(o.seed, historySeedSalt))
	cur := nodes
	start := clk.Now()
	for i := 1; i <= o.saves; i++ {
		var changed, changedBytes int
		if i > 1 {
			frac := minChange + (maxChange-minChange)*rng.Float64()
			ch, cb := graphgen.Mutate(cur, rng.Uint64(), frac)
			if err := put(ch); err != nil {
				return nil, err
			}
			cur = graphgen.Apply(cur, ch)
			changed, changedBytes = len(ch), cb
		}
		fake.Set(b.first.Add(time.Duration(i-1) * historyInterval))
		for _, hs := range b.stores {
			if i > hs.length {
				continue
			}
			r, err := hs.saver.Save(ctx, "interval")
			if err != nil {
				return nil, fmt.Errorf("save %d of %d (bucket %s): %w", i, hs.length, hs.env.bucket, err)
			}
			if r.Unchanged {
				return nil, fmt.Errorf("save %d of %d: nothing changed", i, hs.length)
			}
			hs.saves = append(hs.saves, histSave{n: i, id: r.ID, t: r.Time, up: r.BytesUploaded,
				chunks: r.ChunksUploaded, durMS: r.DurationMS, changed: changed, changeB: changedBytes})
		}
		if i%100 == 0 || i == o.saves {
			logf("history: %d of %d saves (%v)", i, o.saves, clk.Since(start).Round(time.Second))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	b.wall = clk.Since(start)
	for _, hs := range b.stores {
		if err := hs.census(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// census counts the objects of the store's bucket, their bytes and the
// chunk objects among them.
func (hs *histStore) census(ctx context.Context) error {
	state, err := hs.env.snapshotBucket(ctx)
	if err != nil {
		return err
	}
	hs.objects = len(state)
	for k, oi := range state {
		hs.bytes += oi.Size
		if strings.HasPrefix(k, "chunks/") {
			hs.chunkObjects++
		}
	}
	return nil
}

// histOp is one pitr command of the measured sequence.
type histOp struct {
	section string     // "restore" or "history"
	label   string     // the command as shown in the report
	args    []string   // pitr arguments; --store and --session are added
	hs      *histStore // the store it runs against
	restore *histSave  // for a restore: the save --at names
	inspect bool       // list the bucket afterwards (prune, gc)
	note    string     // when it runs, for the report
}

// opRun is one run of a histOp.
type opRun struct {
	wall    time.Duration   // the median of walls
	walls   []time.Duration // every run (restores run restoreRuns times in the timed pass)
	counts  reqCounts
	out     string // stdout and stderr, store URL and data dir replaced
	objects int    // objects in the bucket afterwards (inspect)
	chunks  int    // chunk objects among them
	bytes   int64
}

// opResult is a histOp with its two runs.
type opResult struct {
	op      histOp
	direct  opRun // straight to MinIO: the wall time
	counted opRun // through the counting proxy: the requests
}

// historyOps is the measured sequence, in order.
func historyOps(b *histBuild, keepLast int) []histOp {
	var ops []histOp
	m := b.main()
	restoreOp := func(hs *histStore, n int, note string) histOp {
		s := &hs.saves[n-1]
		return histOp{section: "restore", label: fmt.Sprintf("restore --at <time of save #%d>", n),
			args: []string{"restore", "--at", s.t.UTC().Format("2006-01-02T15:04:05.000Z07:00")},
			hs:   hs, restore: s, note: note}
	}
	for _, hs := range b.stores {
		seen := map[int]bool{}
		for _, n := range []int{5, 10, hs.length / 2, hs.length - 10} {
			if n < 1 || n > hs.length || seen[n] || (hs != m && n != 5 && n != hs.length/2) {
				continue
			}
			seen[n] = true
			note := ""
			if n == hs.length/2 {
				note = "the middle"
			}
			ops = append(ops, restoreOp(hs, n, note))
		}
	}
	n := fmt.Sprint
	saves := num(int64(m.length)) + " saves"
	ops = append(ops,
		histOp{section: "history", label: "verify", args: []string{"verify"}, hs: m, note: saves},
		histOp{section: "history", label: "verify --read-data-subset " + subsetPercent + " --seed 1",
			args: []string{"verify", "--read-data-subset", subsetPercent, "--seed", "1"}, hs: m, note: saves},
		histOp{section: "history", label: "gc --grace 0s --dry-run", args: []string{"gc", "--grace", "0s", "--dry-run"}, hs: m,
			note: "before prune: every chunk is referenced"},
		histOp{section: "history", label: fmt.Sprintf("prune --keep-last %d --dry-run", keepLast),
			args: []string{"prune", "--keep-last", n(keepLast), "--dry-run"}, hs: m},
		histOp{section: "history", label: "prune --keep-within 24h --keep-within-hourly 7d --keep-within-daily 90d --dry-run",
			args: []string{"prune", "--keep-within", "24h", "--keep-within-hourly", "7d", "--keep-within-daily", "90d", "--dry-run"}, hs: m,
			note: "the policy `pitr serve` applies by default"},
		histOp{section: "history", label: fmt.Sprintf("prune --keep-last %d", keepLast),
			args: []string{"prune", "--keep-last", n(keepLast)}, hs: m, inspect: true},
		histOp{section: "history", label: "gc --grace 0s --dry-run", args: []string{"gc", "--grace", "0s", "--dry-run"}, hs: m,
			note: "after prune"},
		histOp{section: "history", label: "gc --grace 0s", args: []string{"gc", "--grace", "0s"}, hs: m, inspect: true,
			note: "after prune"},
		histOp{section: "history", label: "verify", args: []string{"verify"}, hs: m, note: "after prune and gc"},
	)
	late := restoreOp(m, m.length*3/4, "after prune and gc")
	late.section = "history"
	return append(ops, late)
}

// runHistory is the --history benchmark.
func runHistory(ctx context.Context, o options, out, logw io.Writer) error {
	logf := benchLogf(logw)
	dir, err := os.MkdirTemp("", "pitr-bench-history-")
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	res := &historyResults{opts: o, started: clk.Now(), loadStart: loadAvg(), command: historyCommandLine(o)}
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
	srv, err := miniotest.Launch(filepath.Join(dir, "minio"))
	if err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	defer srv.Stop()
	env := benchEnv{bin: bin, dir: dir, minio: srv, session: "bench"}

	nodes := graphgen.Generate(o.seed, o.nodes)
	res.graph = describeGraph(nodes)
	logf("graph: %d nodes, %d data bytes; building %d saves", len(nodes), res.graph.dataBytes, o.saves)
	if res.build, err = buildHistories(ctx, &env, o, nodes, logf); err != nil {
		return fmt.Errorf("build the history: %w", err)
	}
	m := res.build.main()
	logf("built in %v: %d objects (%d chunks), %d bytes in %s", res.build.wall.Round(time.Second),
		m.objects, m.chunkObjects, m.bytes, m.env.bucket)

	res.keepLast = o.saves / 2
	ops := historyOps(res.build, res.keepLast)
	for _, op := range ops {
		if s := op.restore; s != nil {
			if err := describeSave(ctx, &op.hs.env, s); err != nil {
				return err
			}
		}
	}

	if res.ops, err = runPasses(ctx, ops, srv, dir, logf); err != nil {
		return err
	}
	res.finished, res.loadEnd = clk.Now(), loadAvg()

	section := res.markdown()
	if _, err := io.WriteString(out, section); err != nil {
		return err
	}
	if o.write != "" {
		if err := writeHistorySection(o.write, section); err != nil {
			return err
		}
		logf("wrote the history section of %s", o.write)
	}
	return nil
}

// runPasses runs ops twice on the built history: straight to MinIO (for
// the wall times), then, on a copy of MinIO's data as it was before the
// first pass, through the counting proxy (for the requests). It checks
// that both passes had the same outcome.
func runPasses(ctx context.Context, ops []histOp, srv *miniotest.Server, dir string, logf func(string, ...any)) ([]opResult, error) {
	// Copy MinIO's data (stopped) so the second pass starts from the same
	// store as the first.
	snap := filepath.Join(dir, "minio-data-after-build")
	start := clk.Now()
	if err := copyMinioData(srv, snap); err != nil {
		return nil, err
	}
	logf("copied MinIO's data dir in %v", clk.Since(start).Round(time.Millisecond))

	logf("pass 1 of 2: straight to MinIO (wall times)")
	direct, err := runOps(ctx, ops, srv.Addr, nil, dir, logf)
	if err != nil {
		return nil, err
	}
	logf("putting back MinIO's data dir as it was after the build")
	if err := putBackMinioData(srv, snap); err != nil {
		return nil, err
	}
	proxy, err := startProxy(srv.Endpoint)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	logf("pass 2 of 2: through the counting proxy on %s (requests)", proxy.Addr)
	counted, err := runOps(ctx, ops, proxy.Addr, proxy, dir, logf)
	if err != nil {
		return nil, err
	}
	results := make([]opResult, 0, len(ops))
	for i, op := range ops {
		r := opResult{op: op, direct: direct[i], counted: counted[i]}
		if r.direct.out != r.counted.out {
			return nil, fmt.Errorf("%s: the two passes disagree:\n--- straight to MinIO:\n%s\n--- through the proxy:\n%s",
				op.label, clipOut(r.direct.out), clipOut(r.counted.out))
		}
		if op.inspect && (r.direct.objects != r.counted.objects || r.direct.bytes != r.counted.bytes) {
			return nil, fmt.Errorf("%s: the two passes left different buckets (%d vs %d objects)", op.label, r.direct.objects, r.counted.objects)
		}
		results = append(results, r)
	}
	return results, nil
}

// describeSave counts, in-process, the list chunks and distinct data
// chunks of save s: the objects a restore of it must read.
func describeSave(ctx context.Context, env *benchEnv, s *histSave) error {
	m, err := catalog.Load(ctx, env.st, env.session, s.id)
	if err != nil {
		return err
	}
	entries, err := catalog.Entries(ctx, env.st, m, nil)
	if err != nil {
		return err
	}
	distinct := map[chunker.ID]bool{}
	for _, e := range entries {
		distinct[e.ID] = true
	}
	s.listChunks, s.dataChunks, s.packs = len(m.ChunkList.Chunks), len(distinct), len(m.Packs)
	if m.Tree != nil {
		s.treeNodes = int(m.Tree.Nodes)
	}
	return nil
}

// runOps runs ops in order against the MinIO (or proxy) at addr, counting
// requests with proxy when it is not nil.
func runOps(ctx context.Context, ops []histOp, addr string, proxy *countingProxy, dir string, logf func(string, ...any)) ([]opRun, error) {
	runs := make([]opRun, len(ops))
	for i, op := range ops {
		storeURL := fmt.Sprintf("minio://%s/%s?tls=false", addr, op.hs.env.bucket)
		args := append([]string{op.args[0], "--store", storeURL, "--session", op.hs.env.session}, op.args[1:]...)
		dataDir := ""
		if op.restore != nil {
			dataDir = filepath.Join(dir, fmt.Sprintf("restore-%d", i))
			args = append(args, "--data-dir", dataDir)
		}
		times := 1
		if op.restore != nil && proxy == nil {
			times = restoreRuns
		}
		var (
			run   opRun
			walls []time.Duration
		)
		for range times {
			var before reqCounts
			if proxy != nil {
				before = proxy.Counts()
			}
			wall, out, err := runPitr(ctx, &op.hs.env, args)
			if err != nil {
				return nil, fmt.Errorf("pitr %s: %w", strings.Join(args, " "), err)
			}
			if proxy != nil {
				run.counts = proxy.Counts().sub(before)
			}
			if op.restore != nil {
				if !strings.Contains(out, "save "+op.restore.id+" ") {
					return nil, fmt.Errorf("pitr restore --at %s did not choose save %s:\n%s", op.args[2], op.restore.id, out)
				}
				if err := os.RemoveAll(dataDir); err != nil {
					return nil, err
				}
				out = strings.ReplaceAll(out, dataDir, "DATA-DIR")
			}
			out = withoutProgress(strings.ReplaceAll(out, storeURL, "STORE"))
			if run.out != "" && out != run.out {
				return nil, fmt.Errorf("pitr %s printed something else the second time:\n%s", strings.Join(args, " "), clipOut(out))
			}
			run.out = out
			walls = append(walls, wall)
		}
		run.wall, run.walls = median(walls), walls
		wall := run.wall
		if op.inspect {
			state, err := op.hs.env.snapshotBucket(ctx)
			if err != nil {
				return nil, err
			}
			run.objects = len(state)
			for k, oi := range state {
				run.bytes += oi.Size
				if strings.HasPrefix(k, "chunks/") {
					run.chunks++
				}
			}
		}
		runs[i] = run
		logf("  %-40s %8v  %s", clip(op.label, 40), wall.Round(time.Millisecond), run.counts.brief())
	}
	return runs, nil
}

// runPitr runs the pitr binary with args and returns its wall time and
// combined output.
func runPitr(ctx context.Context, env *benchEnv, args []string) (time.Duration, string, error) {
	cmd := exec.CommandContext(ctx, env.bin, args...)
	cmd.Env = env.childEnv()
	start := clk.Now()
	out, err := cmd.CombinedOutput()
	wall := clk.Since(start)
	if err != nil {
		return wall, string(out), fmt.Errorf("%w:\n%s", err, clipOut(string(out)))
	}
	return wall, string(out), nil
}

// copyMinioData stops MinIO, copies its data directory to snap and starts
// it again.
func copyMinioData(srv *miniotest.Server, snap string) error {
	srv.Stop()
	if out, err := exec.Command("cp", "-a", srv.DataDir, snap).CombinedOutput(); err != nil {
		return fmt.Errorf("copy MinIO's data dir: %w: %s", err, out)
	}
	return srv.TryRestart()
}

// putBackMinioData stops MinIO, replaces its data directory with snap and
// starts it again.
func putBackMinioData(srv *miniotest.Server, snap string) error {
	srv.Stop()
	if err := os.RemoveAll(srv.DataDir); err != nil {
		return err
	}
	if err := os.Rename(snap, srv.DataDir); err != nil {
		return err
	}
	return srv.TryRestart()
}

func (c reqCounts) brief() string {
	if c.Total() == 0 {
		return ""
	}
	return fmt.Sprintf("LIST %d GET %d ranged GET %d HEAD %d PUT %d DELETE %d setup %d other %d (errors %d)",
		c.List, c.Get, c.RangedGet, c.Head, c.Put, c.Delete, c.Setup, c.Other, c.Errors)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func clipOut(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 30 {
		lines = append(slices.Clone(lines[:10]), append([]string{"…"}, lines[len(lines)-15:]...)...)
	}
	return strings.Join(lines, "\n")
}

// progressLine matches pitr's progress lines ("pitr: restore: 3.1 MB of
// 18.7 MB (17 %)"), which come as time allows and so differ between runs.
var progressLine = regexp.MustCompile(`(?m)^pitr: [^\n]*: [^\n]* of [^\n]* \(\d+ %\)\n`)

// withoutProgress returns out without its progress lines.
func withoutProgress(out string) string { return progressLine.ReplaceAllString(out, "") }
