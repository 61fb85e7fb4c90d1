package bench

// The scale benchmark (--scale): how saves, restores and memory grow with
// the graph. For each size of --scale-sizes (2,000 and 20,000 graphgen
// nodes and a graph of about 1 GB of large meshes, scalegraph.go), on a
// fresh bucket and `pitr serve`: load the graph through the HTTP API, a
// full save, a no-op save, saves that each change one small
// node, a save after 1 % of the nodes changed, the server's peak RSS; then,
// the server stopped, `pitr restore --at latest` into a new data dir (wall
// time and peak RSS through the rusage helper) and a second `pitr serve`
// on an empty data dir, which restores the newest save as it starts (start
// time and peak RSS). Once, before the sizes: the journal's PUT throughput
// (journal.go) with and without fsync. Everything is black-box, as in the
// other modes; the report states the targets and whether each was
// met, and asserts nothing.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/manifest"
)

const (
	// scaleOneNode is how many 1-node saves each size makes (each a
	// different small node; scaleOneNodeBig at the GB sizes, where a save
	// can take minutes); the report gives their median and worst.
	scaleOneNode    = 5
	scaleOneNodeBig = 3
	// scaleJournalPUTs is the PUTs of each journal run unless --journal
	// says otherwise.
	scaleJournalPUTs = 4000
	// scaleSeedSalt separates the changes' seeds from --seed's graph.
	scaleSeedSalt = 0x5ca1e
)

// scaleBench is what every size needs.
type scaleBench struct {
	o    options
	env  benchEnv // no bucket
	logf func(string, ...any)
}

func runScale(ctx context.Context, o options, out, logw io.Writer) error {
	logf := benchLogf(logw)
	dir, bin, cleanup, err := benchBinary(ctx, o, "scale", logf)
	if err != nil {
		return err
	}
	if o.keep {
		defer logf("kept %s", dir)
	} else {
		defer cleanup()
	}
	res := &scaleResults{opts: o, started: clk.Now(), loadStart: loadAvg(), command: scaleCommandLine(o)}
	res.machine = describeMachine(ctx, bin)

	res.journalPUTs = scaleJournalPUTs
	if o.journal > 0 {
		res.journalPUTs = o.journal
	}
	res.journal = []journalRun{{label: "journal fsync'd (default)", fsync: true}, {label: "no fsync (--journal-fsync=false, baseline)"}}
	for i := range res.journal {
		r := &res.journal[i]
		logf("journal: %d clients, %d PUTs: %s", journalClients, res.journalPUTs, r.label)
		if err := journalOnce(ctx, bin, filepath.Join(dir, fmt.Sprint("journal", i)), res.journalPUTs, r); err != nil {
			return err
		}
		logf("journal: %.0f PUT/s, %d failed", float64(r.puts)/r.wall.Seconds(), r.failures)
	}

	logf("starting MinIO")
	srv, err := miniotest.Launch(filepath.Join(dir, "minio"))
	if err != nil {
		return fmt.Errorf("start minio: %w", err)
	}
	defer srv.Stop()
	b := &scaleBench{o: o, env: benchEnv{bin: bin, dir: dir, minio: srv, session: "bench"}, logf: logf}
	for i, s := range o.scaleSizes {
		pt, err := b.runSize(ctx, i, s)
		if err != nil {
			return fmt.Errorf("size %s: %w", s.spec, err)
		}
		res.points = append(res.points, pt)
	}
	res.finished, res.loadEnd = clk.Now(), loadAvg()
	section := res.markdown()
	if _, err := io.WriteString(out, section); err != nil {
		return err
	}
	if o.write != "" {
		if err := writeSection(o.write, "scale", section); err != nil {
			return err
		}
		logf("wrote the scale section of %s", o.write)
	}
	return nil
}

// runSize measures one size on its own bucket.
func (b *scaleBench) runSize(ctx context.Context, i int, s scaleSize) (*scalePoint, error) {
	start := clk.Now()
	g := newScaleGraph(b.o.seed, s)
	pt := &scalePoint{size: s, nodes: g.count(), meshes: len(g.meshes), dataBytes: g.dataBytes()}
	b.logf("%s: %d nodes (%d generated meshes), %d data bytes, made in %v", s.label(), pt.nodes, pt.meshes, pt.dataBytes,
		clk.Since(start).Round(time.Millisecond))
	env := b.env
	env.bucket = fmt.Sprintf("scale-%d", i+1)
	var err error
	if env.st, err = env.openStore(ctx); err != nil {
		return nil, err
	}
	env.startWait = 10 * time.Minute
	if err := b.saves(ctx, &env, g, pt); err != nil {
		return nil, err
	}
	if err := b.restores(ctx, &env, g, pt); err != nil {
		return nil, err
	}
	pt.wall = clk.Since(start)
	return pt, nil
}

// saves loads the graph into a fresh pitr serve and measures the saves and
// the server's peak RSS; it stops the server at the end.
func (b *scaleBench) saves(ctx context.Context, env *benchEnv, g *scaleGraph, pt *scalePoint) error {
	sv, err := env.startServe(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if sv != nil {
			sv.kill()
		}
	}()
	pid := sv.cmd.Process.Pid
	if err := sv.api.initSession(ctx); err != nil {
		return err
	}
	start := clk.Now()
	if err := g.putAll(ctx, sv.api, 4); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	pt.loadWall = clk.Since(start)
	if pt.serveAfterLoad, err = readProcMem(pid); err != nil {
		return err
	}
	b.logf("  loaded in %v; serve VmHWM %.1f MB", pt.loadWall.Round(time.Millisecond), float64(pt.serveAfterLoad.hwm)/1e6)

	if pt.full, err = b.save(ctx, env, sv, "full save", false); err != nil {
		return err
	}
	if pt.serveAfterFull, err = readProcMem(pid); err != nil {
		return err
	}
	if pt.noop, err = b.save(ctx, env, sv, "no-op save", true); err != nil {
		return err
	}
	if err := b.smallSaves(ctx, env, sv, g, pt); err != nil {
		return err
	}
	if err := b.readMetas(ctx, env, pt); err != nil {
		return err
	}
	if pt.serveAfterSaves, err = readProcMem(pid); err != nil {
		return err
	}
	if err := wantNodes(ctx, sv.api, pt.nodes, "after the saves"); err != nil {
		return err
	}
	b.logf("  serve VmHWM %.1f MB after the saves", float64(pt.serveAfterSaves.hwm)/1e6)
	pt.shutdownWall, err = sv.stop()
	sv = nil
	if err != nil {
		return fmt.Errorf("stop pitr serve: %w", err)
	}
	if !b.o.keep {
		return os.RemoveAll(filepath.Join(env.dir, "data-"+env.bucket))
	}
	return nil
}

// save measures one POST /v1/saves; unchanged says what its answer must

// smallSaves makes the 1-node saves and the 1 % save.
func (b *scaleBench) smallSaves(ctx context.Context, env *benchEnv, sv *serveProc, g *scaleGraph, pt *scalePoint) error {
	seed := b.o.seed ^ scaleSeedSalt
	ones := scaleOneNode
	if pt.meshes > 0 {
		ones = scaleOneNodeBig
	}
	var err error
	for k, i := range g.smallObjects(seed, ones) {
		c := changeSave{nodes: 1, node: g.small[i].ID}
		if c.nodeBytes, c.changedBytes, _, err = g.change(ctx, sv.api, seed+uint64(k), []int{i}); err != nil {
			return err
		}
		if c.save, err = b.save(ctx, env, sv, "1-node save ("+c.node+")", false); err != nil {
			return err
		}
		pt.oneNode = append(pt.oneNode, c)
	}
	idx := g.onePercent(seed + scaleOneNode)
	c := changeSave{nodes: len(idx)}
	var spans []byte
	if c.nodeBytes, c.changedBytes, spans, err = g.change(ctx, sv.api, seed+scaleOneNode, idx); err != nil {
		return err
	}
	if c.save, err = b.save(ctx, env, sv, fmt.Sprintf("1 %% save (%d nodes)", len(idx)), false); err != nil {
		return err
	}
	c.floor = measureFloor(ctx, spans)
	pt.onePct = c
	return nil
}

// readMetas reads from the store what each small save wrote. It runs
// after the saves: walking a save's tree between saves loaded the machine
// (MinIO serving thousands of reads, then collecting) while the next save
// ran, and slowed the 20,000-node 1-node saves by a fifth.
func (b *scaleBench) readMetas(ctx context.Context, env *benchEnv, pt *scalePoint) error {
	var err error
	for k := range pt.oneNode {
		if pt.oneNode[k].meta, err = env.saveMeta(ctx, pt.oneNode[k].save); err != nil {
			return err
		}
		b.logf("    metadata of %s: %s", pt.oneNode[k].node, pt.oneNode[k].meta)
	}
	pt.onePct.meta, err = env.saveMeta(ctx, pt.onePct.save)
	return err
}

// say.
func (b *scaleBench) save(ctx context.Context, env *benchEnv, sv *serveProc, what string, unchanged bool) (saveMeasure, error) {
	m, err := env.measureSave(ctx, sv.api)
	if err != nil {
		return m, fmt.Errorf("%s: %w", what, err)
	}
	if m.answer.Unchanged != unchanged {
		return m, fmt.Errorf("%s answered unchanged=%t", what, m.answer.Unchanged)
	}
	b.logf("  %s: %s", what, m)
	return m, nil
}

// restores runs `pitr restore --at latest` into a new data dir, then a
// second pitr serve on an empty data dir, which restores as it starts.
func (b *scaleBench) restores(ctx context.Context, env *benchEnv, g *scaleGraph, pt *scalePoint) error {
	m, err := catalog.Newest(ctx, env.st, env.session)
	if err != nil {
		return err
	}
	if m.ID != pt.onePct.save.answer.ID {
		return fmt.Errorf("the newest save is %s, want the 1 %% save %s", m.ID, pt.onePct.save.answer.ID)
	}
	dataDir := filepath.Join(env.dir, "restored-"+env.bucket)
	if pt.restore, err = env.runRestore(ctx, dataDir, restoreResult{saveID: m.ID}); err != nil {
		return err
	}
	if pt.restore.nodes != pt.nodes {
		return fmt.Errorf("pitr restore wrote %d nodes, want %d", pt.restore.nodes, pt.nodes)
	}
	b.logf("  pitr restore: %v, peak RSS %.1f MB", pt.restore.wall.Round(time.Millisecond), float64(pt.restore.maxRSS)/1e6)
	if !b.o.keep {
		if err := os.RemoveAll(dataDir); err != nil {
			return err
		}
	}

	sub := *env
	sub.dataDir = filepath.Join(env.dir, "onstart-"+env.bucket)
	start := clk.Now()
	sv, err := sub.startServe(ctx)
	if err != nil {
		return fmt.Errorf("restore on start: %w", err)
	}
	defer func() {
		if sv != nil {
			sv.kill()
		}
	}()
	pt.onStartWall = clk.Since(start)
	if pt.onStart, err = readProcMem(sv.cmd.Process.Pid); err != nil {
		return err
	}
	if err := wantNodes(ctx, sv.api, pt.nodes, "after restoring on start"); err != nil {
		return err
	}
	b.logf("  restore on start: healthy after %v, serve VmHWM %.1f MB", pt.onStartWall.Round(time.Millisecond), float64(pt.onStart.hwm)/1e6)
	_, err = sv.stop()
	sv = nil
	if err != nil {
		return fmt.Errorf("stop the restored pitr serve: %w", err)
	}
	if !b.o.keep {
		return os.RemoveAll(sub.dataDir)
	}
	return nil
}

// saveMeta splits what a save wrote into its manifest, the chunk tree
// nodes it wrote and the data chunks it wrote, from the save's tree: a
// tree node or data chunk is the save's own when it lies in a pack the
// save created (a new object under chunks/p/).
func (e *benchEnv) saveMeta(ctx context.Context, m saveMeasure) (saveMeta, error) {
	meta := saveMeta{manifest: m.manifestBytes, packBytes: m.newChunkBytes, uploaded: m.answer.BytesUploaded}
	man, err := catalog.Load(ctx, e.st, e.session, m.answer.ID)
	if err != nil {
		return meta, err
	}
	if man.Tree == nil {
		return meta, errors.New("save " + man.ID + " has no chunk tree (format 1)")
	}
	packs := map[manifest.PackID]bool{}
	for _, k := range m.newChunkKeys {
		if p, ok := manifest.ParsePackKey(k); ok {
			packs[p] = true
		}
	}
	meta.packs = len(packs)
	seen := map[chunker.ID]bool{}
	entries, err := catalog.Entries(ctx, e.st, man, func(n catalog.TreeNodeAt) {
		if packs[n.Loc.Pack] && !seen[n.ID] {
			seen[n.ID] = true
			meta.tree += n.Loc.Length
			meta.treeNodes++
		}
	})
	if err != nil {
		return meta, err
	}
	meta.treeLevels = man.Tree.Levels
	for _, en := range entries {
		if packs[en.Loc.Pack] && !seen[en.ID] {
			seen[en.ID] = true
			meta.data += en.Loc.Length
			meta.dataChunks++
		}
	}
	return meta, nil
}

// wantNodes checks that the server holds want nodes; when names the moment
// for the error.
func wantNodes(ctx context.Context, api *apiClient, want int, when string) error {
	n, err := api.nodeCount(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("%s: count pitr serve's nodes: %w", when, err)
	case n != want:
		return fmt.Errorf("%s: pitr serve holds %d nodes, want %d", when, n, want)
	}
	return nil
}
