package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/restore"
)

// restoreRun is one `pitr restore` child.
type restoreRun struct {
	wall   time.Duration
	maxRSS int64 // bytes
	nodes  int   // node_count of the restored data dir
}

// restoreResult is the restore phase's figures.
type restoreResult struct {
	saveID      string
	graphBytes  int64 // the encoded graph (bytes_total of the save)
	objects     int   // objects a restore reads: manifest, list and data chunks
	dataChunks  int   // distinct data chunks
	listChunks  int
	objectBytes int64 // their stored (compressed) size
	restores    []restoreRun
	plain       []time.Duration
	warmup      time.Duration
	parallel    int
}

func (r restoreResult) medianRestore() time.Duration {
	ds := make([]time.Duration, len(r.restores))
	for i, rr := range r.restores {
		ds[i] = rr.wall
	}
	return median(ds)
}

func (r restoreResult) medianPlain() time.Duration { return median(r.plain) }

func (r restoreResult) peakRSS() int64 {
	var m int64
	for _, rr := range r.restores {
		m = max(m, rr.maxRSS)
	}
	return m
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchRestore times `pitr restore --at latest` into fresh data dirs
// against a plain parallel GET of the same objects, alternating, after one
// untimed GET pass that warms MinIO's page cache for both.
func benchRestore(ctx context.Context, env *benchEnv, res *results, logf func(string, ...any)) error {
	keys, rr, err := env.restoreObjects(ctx)
	if err != nil {
		return err
	}
	rr.parallel = restore.DefaultParallel
	logf("restore reads %d objects (%d data chunks, %d list chunks, 1 manifest), %d bytes stored",
		rr.objects, rr.dataChunks, rr.listChunks, rr.objectBytes)
	if rr.warmup, err = env.plainGet(ctx, keys, rr.parallel, rr.objectBytes); err != nil {
		return err
	}
	for i := range res.opts.runs {
		run, err := env.runRestore(ctx, filepath.Join(env.dir, fmt.Sprintf("restore-%d", i)), rr)
		if err != nil {
			return err
		}
		if run.nodes != res.graph.nodes {
			return fmt.Errorf("pitr restore wrote %d nodes, want %d", run.nodes, res.graph.nodes)
		}
		rr.restores = append(rr.restores, run)
		d, err := env.plainGet(ctx, keys, rr.parallel, rr.objectBytes)
		if err != nil {
			return err
		}
		rr.plain = append(rr.plain, d)
		logf("run %d: pitr restore %v (peak RSS %d MiB), plain GET %v", i+1,
			run.wall.Round(time.Millisecond), run.maxRSS>>20, d.Round(time.Millisecond))
	}
	res.restore = rr
	return nil
}

// restoreObjects finds, in-process, the keys a restore of the newest save
// reads: its manifest, its list chunks and its distinct data chunks.
func (e *benchEnv) restoreObjects(ctx context.Context) ([]string, restoreResult, error) {
	var rr restoreResult
	m, err := catalog.Newest(ctx, e.st, e.session)
	if err != nil {
		return nil, rr, err
	}
	entries, err := catalog.Entries(ctx, e.st, m, nil)
	if err != nil {
		return nil, rr, err
	}
	mkey, err := manifest.Key(e.session, m.ID)
	if err != nil {
		return nil, rr, err
	}
	keys := []string{mkey}
	for _, c := range m.ChunkList.Chunks {
		keys = append(keys, chunker.ObjectKey(c.ID))
	}
	for p := range m.Packs { // a format 2 save: its packs, whole
		keys = append(keys, manifest.PackKey(p))
	}
	seen := map[chunker.ID]bool{}
	for _, en := range entries {
		if !seen[en.ID] {
			seen[en.ID] = true
			if !en.Loc.InPack() {
				keys = append(keys, chunker.ObjectKey(en.ID))
			}
		}
	}
	state, err := e.snapshotBucket(ctx)
	if err != nil {
		return nil, rr, err
	}
	for _, k := range keys {
		oi, ok := state[k]
		if !ok {
			return nil, rr, fmt.Errorf("save %s: object %s is missing", m.ID, k)
		}
		rr.objectBytes += oi.Size
	}
	rr.saveID, rr.graphBytes = m.ID, m.BytesTotal
	rr.objects, rr.dataChunks, rr.listChunks = len(keys), len(seen), len(m.ChunkList.Chunks)
	if m.Tree != nil {
		rr.listChunks = m.Tree.Nodes
	}
	return keys, rr, nil
}

// runRestore runs `pitr restore --at latest` into dataDir and checks that
// it restored the expected save.
func (e *benchEnv) runRestore(ctx context.Context, dataDir string, rr restoreResult) (restoreRun, error) {
	wall, maxRSS, out, err := runMeasured(ctx, dataDir+".rusage.json", e.childEnv(),
		[]string{e.bin, "restore", "--at", "latest", "--store", e.storeURL(), "--session", e.session, "--data-dir", dataDir})
	if err != nil {
		return restoreRun{}, fmt.Errorf("pitr restore: %w", err)
	}
	if !strings.Contains(out, rr.saveID) {
		return restoreRun{}, fmt.Errorf("pitr restore did not restore save %s:\n%s", rr.saveID, out)
	}
	run := restoreRun{wall: wall, maxRSS: maxRSS}
	meta, err := os.ReadFile(filepath.Join(dataDir, "session.json"))
	if err != nil {
		return run, fmt.Errorf("restored data dir: %w", err)
	}
	var sj struct {
		SaveID    string `json:"save_id"`
		NodeCount int    `json:"node_count"`
	}
	if err := json.Unmarshal(meta, &sj); err != nil {
		return run, fmt.Errorf("restored session.json: %w", err)
	}
	if sj.SaveID != rr.saveID {
		return run, fmt.Errorf("restored session.json names save %q, want %s", sj.SaveID, rr.saveID)
	}
	run.nodes = sj.NodeCount
	return run, nil
}
