package bench

// The requests benchmark (--requests): how many store requests, of which
// kind, and how much wall time saves and restores cost when every request
// costs a latency, as on AWS S3 (~20 ms a request) — the figures the move
// from one object per chunk to packs (several chunks in one object, read
// back with ranged GETs) is meant to improve.
//
// Everything is black-box: `pitr serve` and `pitr restore` are the built
// binary, the graph goes in through the HTTP API, saves are
// `POST /v1/saves`, and the store requests are counted on the wire by two
// counting proxies in front of MinIO (countingProxy): one for the server,
// one for the restores and the raw baselines, so that the server's claim
// renewals (every 10 s) never land in a restore's count. Both proxies sleep
// the same latency before forwarding each request. Nothing here knows the
// layout of the bucket beyond "objects under chunks/ and under sessions/",
// so the same mode measures pitr before and after packs.
//
// For each --nodes and each --latency, on a fresh bucket and server (the
// graph loaded at 0 ms): the full save, --changes saves after 1 % of the
// nodes changed, a 1-node save, a no-op save, `pitr restore --at latest`
// and `--at <id>` of the middle save, and two raw baselines through the
// same proxy (one PUT of the bytes the full save PUT, one GET of the bytes
// the restore got). Then the first latency's server goes on to a history
// of 50 and of --saves saves (built at 0 ms, 1 % of the nodes changed
// before each), and at each point both restores run again at each latency
// and the bucket is listed.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/gc"
	"github.com/pitr-dev/pitr/internal/graphgen"
	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/manifest"
)

const (
	// smallChange is the share of nodes a small save changes, and each save
	// of the history.
	smallChange = 0.01
	// requestsSeedSalt separates the history's mutations from other uses of
	// --seed.
	requestsSeedSalt = 0x72657173 // "reqs"
	// earlyHistory is the first history length measured (when below --saves).
	earlyHistory = 50
)

// reqBench is what every phase of the requests benchmark needs.
type reqBench struct {
	o      options
	env    benchEnv       // no bucket
	sp, cp *countingProxy // the server's store; the restores' and baselines'
	logf   func(string, ...any)
}

// reqServe is one `pitr serve` on its own bucket, through the server proxy.
type reqServe struct {
	env benchEnv
	sv  *serveProc
	ids []string // its saves, oldest first
	cur []graphgen.Node
}

func runRequests(ctx context.Context, o options, out, logw io.Writer) error {
	logf := benchLogf(logw)
	dir, bin, cleanup, err := benchBinary(ctx, o, "requests", logf)
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", dir)
	} else {
		defer cleanup()
	}
	res := &requestsResults{opts: o, started: clk.Now(), loadStart: loadAvg(), command: requestsCommandLine(o)}
	res.machine = describeMachine(ctx, bin)
	logf("starting MinIO")
	srv, err := miniotest.Launch(filepath.Join(dir, "minio"))
	if err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	defer srv.Stop()
	b := &reqBench{o: o, env: benchEnv{bin: bin, dir: dir, minio: srv, session: "bench"}, logf: logf}
	if b.sp, err = startProxy(srv.Endpoint); err != nil {
		return err
	}
	defer b.sp.Close()
	if b.cp, err = startProxy(srv.Endpoint); err != nil {
		return err
	}
	defer b.cp.Close()
	for _, n := range o.nodeList {
		pt, err := b.runPoint(ctx, n)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		res.points = append(res.points, pt)
	}
	res.finished, res.loadEnd = clk.Now(), loadAvg()
	section := res.markdown()
	if _, err := io.WriteString(out, section); err != nil {
		return err
	}
	if o.write != "" {
		if err := writeSection(o.write, "requests", section); err != nil {
			return err
		}
		logf("wrote the requests section of %s", o.write)
	}
	return nil
}

func (b *reqBench) setLatency(d time.Duration) {
	b.sp.SetLatency(d)
	b.cp.SetLatency(d)
}

// historyPoints are the history lengths measured: 50 (when shorter than
// saves) and saves.
func historyPoints(saves int) []int {
	if earlyHistory < saves {
		return []int{earlyHistory, saves}
	}
	return []int{saves}
}

// runPoint measures one graph size.
func (b *reqBench) runPoint(ctx context.Context, n int) (*requestsPoint, error) {
	nodes := graphgen.Generate(b.o.seed, n)
	pt := &requestsPoint{nodes: n, dataBytes: dataBytes(nodes), latencies: b.o.latencies, changes: b.o.changes,
		smallNodes: min(max(int(math.Round(smallChange*float64(n))), 1), n)}
	b.logf("%d nodes, %d data bytes", n, pt.dataBytes)
	var hist *reqServe // the first latency's server goes on to the history
	defer func() {
		if hist != nil && hist.sv != nil {
			hist.sv.kill()
		}
	}()
	for i, lat := range b.o.latencies {
		s, err := b.measureAt(ctx, pt, nodes, i, lat)
		if err != nil {
			if s != nil && s.sv != nil {
				s.sv.kill()
			}
			return nil, err
		}
		if i == 0 {
			hist = s
			continue
		}
		if _, err := s.sv.stop(); err != nil {
			return nil, fmt.Errorf("stop pitr serve: %w", err)
		}
	}

	rng := mrand.New(mrand.NewPCG(b.o.seed, requestsSeedSalt))
	for _, target := range historyPoints(b.o.saves) {
		bs := buildStat{from: len(hist.ids) + 1, to: target}
		start := clk.Now()
		for len(hist.ids) < target {
			ch, _ := graphgen.Mutate(hist.cur, rng.Uint64(), smallChange)
			if err := hist.change(ctx, ch); err != nil {
				return nil, err
			}
			m, err := b.save(ctx, hist, true)
			if err != nil {
				return nil, fmt.Errorf("history save %d: %w", len(hist.ids)+1, err)
			}
			bs.counts = addCounts(bs.counts, m.c)
			if len(hist.ids)%100 == 0 {
				b.logf("history: %d of %d saves (%v)", len(hist.ids), b.o.saves, clk.Since(start).Round(time.Second))
			}
		}
		bs.wall = clk.Since(start)
		pt.builds = append(pt.builds, bs)
		b.logf("history: saves #%d–#%d built in %v", bs.from, bs.to, bs.wall.Round(time.Millisecond))
		// Restores before gc (every pack the saves name is there), then
		// gc, then restores again (older saves through forward records).
		suffix := fmt.Sprintf(", %s saves", num(int64(target)))
		if err := b.restoresAt(ctx, pt, hist, suffix); err != nil {
			return nil, err
		}
		st, err := storedIn(ctx, &hist.env, target)
		if err == nil {
			st.packsKept, st.distinct, err = keptBytes(ctx, &hist.env)
		}
		if err == nil {
			err = b.collect(ctx, hist, &st)
		}
		if err == nil {
			err = b.restoresAt(ctx, pt, hist, suffix+", after gc")
		}
		if err != nil {
			return nil, err
		}
		pt.stored = append(pt.stored, st)
	}
	_, err := hist.sv.stop()
	hist.sv = nil
	if err != nil {
		return nil, fmt.Errorf("stop pitr serve: %w", err)
	}
	return pt, nil
}

// measureAt measures the saves, restores and baselines of one latency on
// a fresh bucket and server, which it returns running.
func (b *reqBench) measureAt(ctx context.Context, pt *requestsPoint, nodes []graphgen.Node, i int, lat time.Duration) (*reqServe, error) {
	s := &reqServe{env: b.env, cur: nodes}
	s.env.bucket = fmt.Sprintf("requests-%d-%d", len(nodes), i)
	s.env.via = b.sp.Addr
	var err error
	if s.env.st, err = s.env.openStore(ctx); err != nil {
		return nil, err
	}
	b.setLatency(0)
	b.logf("latency %v: starting pitr serve on bucket %s and loading the graph", lat, s.env.bucket)
	// No retention: a prune woken by a save would add its LIST to the
	// counts of the next operation.
	if s.sv, err = s.env.startServe(ctx, "--prune-interval", "0"); err != nil {
		return nil, err
	}
	if err := s.sv.api.initSession(ctx); err != nil {
		return s, err
	}
	if err := s.sv.api.putNodes(ctx, nodes, 4); err != nil {
		return s, err
	}
	b.setLatency(lat)
	defer b.setLatency(0)

	full, err := b.save(ctx, s, true)
	if err != nil {
		return s, fmt.Errorf("full save: %w", err)
	}
	pt.add(opFull, "", lat, full)
	var small []reqMeasure
	for k := 1; k <= b.o.changes; k++ {
		ch, _ := graphgen.Mutate(s.cur, b.o.seed+uint64(k), smallChange)
		if err := s.change(ctx, ch); err != nil {
			return s, err
		}
		m, err := b.save(ctx, s, true)
		if err != nil {
			return s, fmt.Errorf("small save %d: %w", k, err)
		}
		small = append(small, m)
	}
	pt.add(opSmall, "", lat, small...)
	ch, _ := graphgen.Mutate(s.cur, b.o.seed+uint64(b.o.changes)+1, 1e-9) // one node
	if err := s.change(ctx, ch); err != nil {
		return s, err
	}
	one, err := b.save(ctx, s, true)
	if err != nil {
		return s, fmt.Errorf("1-node save: %w", err)
	}
	pt.add(opOneNode, "", lat, one)
	noop, err := b.save(ctx, s, false)
	if err != nil {
		return s, fmt.Errorf("no-op save: %w", err)
	}
	pt.add(opNoop, "", lat, noop)
	if err := b.restores(ctx, pt, s, lat, ""); err != nil {
		return s, err
	}
	newest := pt.find(opRestoreNewest, lat)
	put, get, err := b.raw(ctx, s.env.bucket+"-raw", full.c.BytesPut, newest.runs[0].c.BytesGot)
	if err != nil {
		return s, fmt.Errorf("raw baselines: %w", err)
	}
	pt.add(opRawPut, "", lat, put)
	pt.add(opRawGet, "", lat, get)
	disk, err := b.writeGraph(newest.runs[0].graph)
	if err != nil {
		return s, fmt.Errorf("raw baselines: %w", err)
	}
	disk.wall += get.wall
	disk.c = get.c
	pt.add(opRawGetDisk, "", lat, disk)
	return s, nil
}

// restores runs `pitr restore --at latest` and `--at <id>` of the middle
// save, recording them at latency lat (the proxies' latency now).
func (b *reqBench) restores(ctx context.Context, pt *requestsPoint, s *reqServe, lat time.Duration, suffix string) error {
	n := len(s.ids)
	newest, err := b.restore(ctx, s, "latest", s.ids[n-1])
	if err != nil {
		return err
	}
	pt.add(opRestoreNewest+suffix, fmt.Sprintf("save #%s of %s", num(int64(n)), num(int64(n))), lat, newest)
	mid := max(n/2, 1)
	older, err := b.restore(ctx, s, s.ids[mid-1], s.ids[mid-1])
	if err != nil {
		return err
	}
	pt.add(opRestoreOlder+suffix, fmt.Sprintf("save #%s of %s, `--at` its id", num(int64(mid)), num(int64(n))), lat, older)
	if suffix != "" || n < 2 {
		return nil
	}
	id := s.cur[len(s.cur)/2].ID
	show, err := b.look(ctx, s, "show", "--at", "latest", "--json", id)
	if err != nil {
		return err
	}
	pt.add(opShow, fmt.Sprintf("node %s of %s", id, num(int64(len(s.cur)))), lat, show)
	diff, err := b.look(ctx, s, "diff", "--json", s.ids[n-2], "latest")
	if err != nil {
		return err
	}
	pt.add(opDiff, "saves #"+num(int64(n-1))+" and #"+num(int64(n)), lat, diff)
	return nil
}

// restoresAt measures the history's restores at every latency.
func (b *reqBench) restoresAt(ctx context.Context, pt *requestsPoint, hist *reqServe, suffix string) error {
	defer b.setLatency(0)
	for _, lat := range b.o.latencies {
		b.setLatency(lat)
		if err := b.restores(ctx, pt, hist, lat, suffix); err != nil {
			return err
		}
	}
	return nil
}

// look runs a pitr command that reads the store (show, diff) through the
// restore proxy and counts its requests.
func (b *reqBench) look(ctx context.Context, s *reqServe, command string, args ...string) (reqMeasure, error) {
	m, err := b.counted(ctx, s, command, args...)
	if err == nil {
		b.logf("  %-44s %8v  %s", command, m.wall.Round(time.Millisecond), m.c.brief())
	}
	return m, err
}

// counted runs `pitr command --store … --session … args` through the
// restore proxy and counts its requests.
func (b *reqBench) counted(ctx context.Context, s *reqServe, command string, args ...string) (reqMeasure, error) {
	storeURL := fmt.Sprintf("minio://%s/%s?tls=false", b.cp.Addr, s.env.bucket)
	args = append([]string{command, "--store", storeURL, "--session", s.env.session}, args...)
	before := b.cp.Counts()
	wall, _, err := runPitr(ctx, &s.env, args)
	b.cp.Settle()
	m := reqMeasure{c: b.cp.Counts().sub(before), wall: wall}
	if err != nil {
		return m, fmt.Errorf("pitr %s: %w", strings.Join(args, " "), err)
	}
	return m, nil
}

// change PUTs changed nodes through the API.
func (s *reqServe) change(ctx context.Context, changed []graphgen.Node) error {
	if err := s.sv.api.putNodes(ctx, changed, 4); err != nil {
		return err
	}
	s.cur = graphgen.Apply(s.cur, changed)
	return nil
}

// save asks for a save and counts its requests; wantChange says whether
// it must make a save (else it must find nothing changed).
func (b *reqBench) save(ctx context.Context, s *reqServe, wantChange bool) (reqMeasure, error) {
	before := b.sp.Counts()
	start := clk.Now()
	a, err := s.sv.api.save(ctx)
	if err != nil {
		return reqMeasure{}, err
	}
	m := reqMeasure{wall: clk.Since(start)}
	b.sp.Settle()
	m.c = b.sp.Counts().sub(before)
	if a.Unchanged == wantChange {
		return m, fmt.Errorf("save answered unchanged=%t", a.Unchanged)
	}
	if !a.Unchanged {
		s.ids = append(s.ids, a.ID)
	}
	return m, nil
}

// restore runs `pitr restore --at at` through the restore proxy into a
// fresh data dir and checks that it restored save wantID whole.
func (b *reqBench) restore(ctx context.Context, s *reqServe, at, wantID string) (reqMeasure, error) {
	dataDir := filepath.Join(b.env.dir, "restored")
	m, err := b.counted(ctx, s, "restore", "--at", at, "--data-dir", dataDir)
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dataDir)
	meta, err := os.ReadFile(filepath.Join(dataDir, "session.json"))
	if err != nil {
		return m, fmt.Errorf("restored data dir: %w", err)
	}
	var sj struct {
		SaveID    string `json:"save_id"`
		NodeCount int    `json:"node_count"`
	}
	if err := json.Unmarshal(meta, &sj); err != nil {
		return m, fmt.Errorf("restored session.json: %w", err)
	}
	if sj.SaveID != wantID || sj.NodeCount != len(s.cur) {
		return m, fmt.Errorf("pitr restore --at %s restored save %q with %d nodes, want %s with %d", at, sj.SaveID, sj.NodeCount, wantID, len(s.cur))
	}
	fi, err := os.Stat(filepath.Join(dataDir, "graph.pitrg"))
	if err != nil {
		return m, fmt.Errorf("restored data dir: %w", err)
	}
	m.graph = fi.Size()
	b.logf("  restore --at %-32s %8v  %s", clip(at, 32), m.wall.Round(time.Millisecond), m.c.brief())
	return m, nil
}

// raw measures the baselines through the restore proxy: one PUT of
// putBytes and one single-stream GET of getBytes (random bytes, put in
// place straight into MinIO first), with minio-go, in a bucket of their own.
func (b *reqBench) raw(ctx context.Context, bucket string, putBytes, getBytes int64) (put, get reqMeasure, err error) {
	direct, closeDirect, err := b.env.newMinioClient()
	if err != nil {
		return put, get, err
	}
	defer closeDirect()
	if err := direct.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		return put, get, fmt.Errorf("make bucket %s: %w", bucket, err)
	}
	data := make([]byte, max(putBytes, getBytes))
	_, _ = rand.Read(data)
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true}
	if _, err := direct.PutObject(ctx, bucket, "get", bytes.NewReader(data[:getBytes]), getBytes, opts); err != nil {
		return put, get, err
	}
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		return put, get, err
	}
	defer tr.CloseIdleConnections()
	// The region given: no location lookup, one request each.
	client, err := minio.New(b.cp.Addr, &minio.Options{Region: "us-east-1", Transport: tr,
		Creds: credentials.NewStaticV4(b.env.minio.AccessKey, b.env.minio.SecretKey, "")})
	if err != nil {
		return put, get, err
	}
	before, start := b.cp.Counts(), clk.Now()
	if _, err := client.PutObject(ctx, bucket, "put", bytes.NewReader(data[:putBytes]), putBytes, opts); err != nil {
		return put, get, fmt.Errorf("put: %w", err)
	}
	put.wall = clk.Since(start)
	b.cp.Settle()
	put.c = b.cp.Counts().sub(before)

	before, start = b.cp.Counts(), clk.Now()
	obj, err := client.GetObject(ctx, bucket, "get", minio.GetObjectOptions{})
	if err != nil {
		return put, get, fmt.Errorf("get: %w", err)
	}
	n, err := io.Copy(io.Discard, obj)
	obj.Close()
	get.wall = clk.Since(start)
	switch {
	case err != nil:
		return put, get, fmt.Errorf("get: read %d of %d bytes: %w", n, getBytes, err)
	case n != getBytes:
		return put, get, fmt.Errorf("get: read %d of %d bytes", n, getBytes)
	}
	b.cp.Settle()
	get.c = b.cp.Counts().sub(before)
	b.logf("  raw PUT of %d bytes %v, raw GET of %d bytes %v", putBytes, put.wall.Round(time.Millisecond), getBytes, get.wall.Round(time.Millisecond))
	return put, get, nil
}

// writeGraph measures the disk's part of a restore: n bytes written to a
// new file in the bench's directory, the file and the directory fsync'd.
func (b *reqBench) writeGraph(n int64) (reqMeasure, error) {
	data := make([]byte, n)
	_, _ = rand.Read(data)
	dir, err := os.MkdirTemp(b.env.dir, "disk-")
	if err != nil {
		return reqMeasure{}, err
	}
	defer os.RemoveAll(dir)
	start := clk.Now()
	f, err := os.Create(filepath.Join(dir, "graph"))
	if err != nil {
		return reqMeasure{}, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return reqMeasure{}, fmt.Errorf("write %d bytes: %w", n, err)
	}
	m := reqMeasure{wall: clk.Since(start)}
	b.logf("  %d bytes written and fsync'd in %v", n, m.wall.Round(time.Millisecond))
	return m, nil
}

// syncDir fsyncs directory dir.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// storedIn lists env's bucket (straight, not counted).
func storedIn(ctx context.Context, env *benchEnv, saves int) (storedStats, error) {
	st := storedStats{saves: saves}
	state, err := env.snapshotBucket(ctx)
	if err != nil {
		return st, err
	}
	for k, oi := range state {
		switch {
		case strings.HasPrefix(k, "chunks/"):
			st.chunkObjs++
			st.chunkBytes += oi.Size
		case strings.HasPrefix(k, "sessions/"):
			st.sessionObjs++
			st.sessionBytes += oi.Size
		default:
			st.otherObjs++
			st.otherBytes += oi.Size
		}
	}
	return st, nil
}

// collect runs gc on the history's bucket, as `pitr gc` with the default
// --max-unused but --grace 0s: the history's hours of saves took minutes
// here, and no save is in flight (the server saves only when asked). It
// records what gc did and the bucket after it; the restores that follow
// read the store gc left.
func (b *reqBench) collect(ctx context.Context, hist *reqServe, st *storedStats) error {
	start := clk.Now()
	rep, err := gc.Run(ctx, hist.env.st, gc.Options{MaxUnused: b.o.maxUnused})
	if err != nil {
		return fmt.Errorf("gc after %d saves: %w", st.saves, err)
	}
	st.gcWall, st.gc = clk.Since(start), rep
	after, err := storedIn(ctx, &hist.env, st.saves)
	st.afterGC = after.chunkBytes
	b.logf("history: gc after %d saves in %v: repacked %d packs, copied %s; chunks/ %s → %s", st.saves,
		st.gcWall.Round(time.Millisecond), rep.Repacked, byteSize(float64(rep.RepackCopied)), byteSize(float64(st.chunkBytes)), byteSize(float64(after.chunkBytes)))
	return err
}

// keptBytes measures what env's session's saves reference: the bytes of
// every pack a save names (what gc keeps while retention keeps every save,
// as the default does for a day of saves) and the distinct bytes of the
// data chunks and tree nodes in them (read straight, not counted).
func keptBytes(ctx context.Context, env *benchEnv) (packs, distinct int64, err error) {
	saves, err := catalog.List(ctx, env.st, env.session)
	if err != nil {
		return 0, 0, err
	}
	sizes, chunks := map[manifest.PackID]int64{}, map[chunker.ID]int64{}
	for _, m := range saves {
		for p, size := range m.Packs {
			sizes[p] = size
		}
		if m.Tree == nil {
			continue
		}
		entries, err := catalog.Entries(ctx, env.st, m, func(n catalog.TreeNodeAt) { chunks[n.ID] = n.Loc.Length })
		if err != nil {
			return 0, 0, fmt.Errorf("save %s: %w", m.ID, err)
		}
		for _, e := range entries {
			chunks[e.ID] = e.Loc.Length
		}
	}
	for _, n := range sizes {
		packs += n
	}
	for _, n := range chunks {
		distinct += n
	}
	return packs, distinct, nil
}

func addCounts(a, b reqCounts) reqCounts {
	var zero reqCounts
	return a.sub(zero.sub(b))
}
