package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/internal/damage"
	"github.com/pitr-dev/pitr/manifest"
	pminio "github.com/pitr-dev/pitr/store/minio"
)

// TestHistoryPruneGC makes six saves, each replacing a 256 KiB node so that
// old chunks go out of use, then checks `prune --keep-last 3` (its dry run
// first), `gc --grace 0s` (its dry run first), and that every kept save
// still verifies, restores by its time and serves exactly its graph.
func TestHistoryPruneGC(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "base", client.NodeInput{Type: "object", Data: []byte("base")})
	const n = 6
	var ids []string
	graphs := map[string][]node{}
	for i := range n {
		s.put(t, "big", client.NodeInput{Type: "mesh", Deps: []string{"base"}, Data: randBytes(256<<10, uint64(100+i))})
		s.put(t, fmt.Sprint("n", i), client.NodeInput{Type: "object", Data: []byte{byte(i)}})
		r := s.saveNow(t)
		if r.Unchanged {
			t.Fatalf("save %d: %+v, want a new save", i, r)
		}
		ids = append(ids, r.ID)
		graphs[r.ID] = s.graph(t)
	}
	s.stop(t) // nothing changed since the last save: no final save
	if got := saveIDs(listSaves(t, st)); !slices.Equal(got, ids) {
		t.Fatalf("pitr saves --json: %q, want %q", got, ids)
	}
	drop, keep := ids[:n-3], ids[n-3:]

	objs := listObjects(t, st)
	r := st.mustPitr(t, "prune", "--keep-last", "3", "--dry-run")
	for _, id := range ids {
		line := lineWith(r.stdout, id)
		switch {
		case line == "":
			t.Errorf("prune --dry-run does not list save %s:\n%s", id, r.stdout)
		case slices.Contains(drop, id) && !strings.Contains(line, "remove"):
			t.Errorf("prune --dry-run: save %s should be listed as going: %q", id, line)
		case slices.Contains(keep, id) && (!strings.Contains(line, "keep") || !strings.Contains(line, "last")):
			t.Errorf("prune --dry-run: save %s should be listed as kept by the keep-last rule: %q", id, line)
		}
	}
	if got := saveIDs(listSaves(t, st)); !slices.Equal(got, ids) {
		t.Errorf("after prune --dry-run, saves %q, want all of %q", got, ids)
	}
	if after := listObjects(t, st); !maps.Equal(objs, after) {
		t.Errorf("prune --dry-run changed the bucket: %s", diffObjects(objs, after))
	}

	st.mustPitr(t, "prune", "--keep-last", "3")
	saves := listSaves(t, st)
	if got := saveIDs(saves); !slices.Equal(got, keep) {
		t.Fatalf("after prune --keep-last 3, saves %q, want the newest 3 %q", got, keep)
	}

	objs = listObjects(t, st)
	r = st.mustPitr(t, "gc", "--grace", "0s", "--dry-run")
	wouldDelete := gcCount(t, regexp.MustCompile(`would delete (\d+) unreferenced chunk`), r.stdout)
	if after := listObjects(t, st); !maps.Equal(objs, after) {
		t.Errorf("gc --dry-run changed the bucket: %s", diffObjects(objs, after))
	}
	r = st.mustPitr(t, "gc", "--grace", "0s")
	deleted := gcCount(t, regexp.MustCompile(`deleted (\d+) unreferenced chunk`), r.stdout)
	if m := regexp.MustCompile(`freed ([0-9.]+) ?([KMGT]?i?B)`).FindStringSubmatch(r.stdout); m == nil {
		t.Errorf("gc does not report the bytes freed:\n%s", r.stdout)
	} else if f, _ := strconv.ParseFloat(m[1], 64); f <= 0 {
		t.Errorf("gc freed %s %s after pruning 3 saves of replaced 256 KiB data, want > 0:\n%s", m[1], m[2], r.stdout)
	}
	after := listObjects(t, st)
	gone := len(chunkObjects(objs)) - len(chunkObjects(after))
	if deleted <= 0 || gone != deleted || wouldDelete != deleted {
		t.Errorf("gc --grace 0s reports %d chunks deleted (dry run: %d), the bucket lost %d chunks; want the same number > 0:\n%s",
			deleted, wouldDelete, gone, r.stdout)
	}
	for k := range after {
		if _, ok := objs[k]; !ok {
			t.Errorf("gc created object %s", k)
		}
	}

	st.mustPitr(t, "verify", "--read-data")
	// Each restore is served before the next is made: a restored copy is a
	// rollback only while the store's newest save is the one it saw.
	for _, sv := range saves {
		dir := filepath.Join(t.TempDir(), "kept")
		r := st.mustPitr(t, "restore", "--at", sv.Time.UTC().Format(time.RFC3339Nano), "--data-dir", dir)
		if sj := readSessionJSON(t, dir); sj.SaveID != sv.ID {
			t.Errorf("restore --at %s (the time of kept save %s) restored save %s:\n%s", sv.Time.Format(time.RFC3339Nano), sv.ID, sj.SaveID, r.stdout)
			continue
		}
		s := startServer(t, st, serveOpts{dataDir: dir})
		s.requireGraph(t, "server on the restore of kept save "+sv.ID, graphs[sv.ID])
		s.stop(t)
	}
}

// TestVerifyCorruptChunk damages one chunk of a save where it lies in its
// pack: `verify --read-data` fails naming the chunk and the
// save, plain `verify` passes, and a restore of that save fails naming the
// chunk without touching an existing data dir or leaving a new one behind.
func TestVerifyCorruptChunk(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "a", client.NodeInput{Type: "object", Data: []byte("a1")})
	a := s.saveNow(t)
	s.put(t, "big", client.NodeInput{Type: "mesh", Deps: []string{"a"}, Data: randBytes(1<<20, 42)})
	b := s.saveNow(t)
	s.stop(t)

	// An existing data dir holding a session (save A).
	existing := filepath.Join(t.TempDir(), "existing")
	st.mustPitr(t, "restore", "--at", a.Time.UTC().Format(time.RFC3339Nano), "--data-dir", existing)
	if sj := readSessionJSON(t, existing); sj.SaveID != a.ID {
		t.Fatalf("restore of save A wrote save %s", sj.SaveID)
	}

	// The victim: the largest chunk save B added (a data chunk of "big"),
	// damaged where it lies in its pack.
	pst := pitrStore(t, st)
	entriesOf := func(id string) []manifest.Entry {
		m, err := catalog.Load(t.Context(), pst, "default", id)
		if err != nil {
			t.Fatal(err)
		}
		es, err := catalog.Entries(t.Context(), pst, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	inA := map[chunker.ID]bool{}
	for _, e := range entriesOf(a.ID) {
		inA[e.ID] = true
	}
	var victim manifest.Entry
	for _, e := range entriesOf(b.ID) {
		if !inA[e.ID] && e.Size > victim.Size {
			victim = e
		}
	}
	if victim.Size == 0 {
		t.Fatalf("save B added no chunks")
	}
	id := victim.ID.String()
	if _, err := damage.Chunk(t.Context(), pst, victim, damage.Flip); err != nil {
		t.Fatal(err)
	}
	t.Logf("damaged chunk %s (%d bytes uncompressed) in %s", id, victim.Size, victim.Loc)

	r := st.pitr(t, "verify", "--read-data")
	out := r.stdout + r.stderr
	if r.code == 0 || !strings.Contains(out, id) || !strings.Contains(out, b.ID) {
		t.Errorf("verify --read-data with chunk %s of save %s corrupt: exit %d; want a failure naming both:\n%s", id, b.ID, r.code, out)
	}
	if line := lineWith(out, a.ID); line != "" {
		t.Errorf("verify --read-data reports save %s, which does not use chunk %s: %q", a.ID, id, line)
	}
	if r := st.pitr(t, "verify"); r.code != 0 {
		t.Errorf("plain verify (existence only) with every chunk present: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	st.mustPitr(t, "verify", "--read-data", "--save", a.ID)

	before := snapshotDir(t, existing)
	r = st.pitr(t, "restore", "--at", "latest", "--data-dir", existing, "--force")
	if r.code == 0 || !strings.Contains(r.stderr, id) {
		t.Errorf("restore --force of save %s with chunk %s corrupt: exit %d, stderr %q; want a failure naming the chunk", b.ID, id, r.code, r.stderr)
	}
	if after := snapshotDir(t, existing); !maps.Equal(before, after) {
		t.Errorf("failed restore --force changed the data dir:\nbefore %v\nafter  %v", before, after)
	}
	if sj := readSessionJSON(t, existing); sj.SaveID != a.ID {
		t.Errorf("after the failed restore, session.json names save %s, want %s", sj.SaveID, a.ID)
	}
	requireEntries(t, filepath.Dir(existing), "existing")

	parent := t.TempDir()
	fresh := filepath.Join(parent, "new")
	r = st.pitr(t, "restore", "--at", "latest", "--data-dir", fresh)
	if r.code == 0 || !strings.Contains(r.stderr, id) {
		t.Errorf("restore into a new dir of save %s with chunk %s corrupt: exit %d, stderr %q; want a failure naming the chunk", b.ID, id, r.code, r.stderr)
	}
	if left := snapshotDir(t, fresh); len(left) > 1 {
		t.Errorf("failed restore left files in the new dir: %v", slices.Sorted(maps.Keys(left)))
	}
	requireEntries(t, parent, "new")
}

// TestKillDuringSaveTakeover kills a server (SIGKILL) while it uploads a
// large save: the store keeps only garbage (verify passes), and a new
// server without --takeover waits for the dead holder's claim to lapse,
// says so, takes over by itself and serves the newest committed save.
func TestKillDuringSaveTakeover(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s1 := startServer(t, st, serveOpts{})
	s1.initSession(t)
	s1.put(t, "root", client.NodeInput{Type: "scene", Data: []byte("root")})
	first := s1.saveNow(t)
	small := s1.graph(t)

	const nodes, size = 160, 256 << 10
	putMany(t, s1, nodes, size)
	baseline := len(chunkObjects(listObjects(t, st)))
	postDone := make(chan struct{})
	adm, ctx := s1.admin(t), within(t, 2*time.Minute)
	go func() {
		defer close(postDone)
		r, err := adm.Save(ctx)
		t.Logf("POST /v1/saves interrupted by the kill: %+v %v", r, err)
	}()
	// Poll the bucket tightly: kill as soon as the save has uploaded chunks.
	deadline := time.Now().Add(time.Minute)
	for len(chunkObjects(listObjects(t, st))) <= baseline {
		if time.Now().After(deadline) {
			t.Fatalf("the big save uploaded no chunk within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s1.kill(t)
	killedAt := time.Now()
	<-postDone

	saves := listSaves(t, st)
	interrupted := len(saves) == 1
	if !interrupted {
		t.Logf("the big save completed before the kill (saves %s); the half-done case was not exercised", fmtSaves(saves))
	} else if saves[0].ID != first.ID {
		t.Fatalf("saves after the kill: %s, want only %s", fmtSaves(saves), first.ID)
	}
	newest := saves[len(saves)-1]
	left := len(chunkObjects(listObjects(t, st))) - baseline
	t.Logf("the killed save left %d chunks", left)
	st.mustPitr(t, "verify")
	st.mustPitr(t, "verify", "--read-data")

	started := time.Now()
	s2 := startServer(t, st, serveOpts{})
	waited := time.Since(started)
	t.Logf("the new server served %v after it started, %v after the kill", waited.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
	log := strings.ToLower(s2.out.String())
	if waited > 60*time.Second {
		t.Errorf("the new server took %v to take over a dead holder's claim (SPEC: lapses at most 30 s after its last renewal)", waited)
	}
	if waited < 10*time.Second {
		t.Errorf("the new server served %v after it started, %v after the holder died: a claim renewed within the last 10 s was taken without waiting for it to lapse",
			waited, time.Since(killedAt))
	}
	if !strings.Contains(log, "wait") || !strings.Contains(log, "laps") {
		t.Errorf("the new server's log does not say it waited for the claim to lapse:\n%s", tail(s2.out.String(), 3000))
	}
	if sj := readSessionJSON(t, s2.dataDir); sj.SaveID != newest.ID || !sj.Initialized {
		t.Errorf("new server's session.json %+v, want the newest committed save %s, initialized", sj, newest.ID)
	}
	in := s2.session(t)
	if in.State != "active" || in.LastSave == nil || in.LastSave.ID != newest.ID {
		t.Errorf("new server's session %+v, want active with last_save %s", in, newest.ID)
	}
	if interrupted {
		s2.requireGraph(t, "server that took over", small)
	} else if in.NodeCount != nodes+1 {
		t.Errorf("new server has %d nodes, want %d", in.NodeCount, nodes+1)
	}
	s2.put(t, "after", client.NodeInput{Type: "object"})
	if r := s2.saveNow(t); r.Unchanged {
		t.Errorf("save by the server that took over: %+v, want a new save", r)
	}
	s2.stop(t)
	st.mustPitr(t, "verify")
}

// TestClaimReleasedOnCleanStop checks that SIGTERM releases the writer
// claim: a new server without --takeover starts at once.
func TestClaimReleasedOnCleanStop(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s1 := startServer(t, st, serveOpts{})
	s1.initSession(t)
	s1.put(t, "x", client.NodeInput{Type: "object", Data: []byte("x")})
	s1.saveNow(t)
	graph := s1.graph(t)
	s1.stop(t)
	if out := s1.out.String(); !strings.Contains(strings.ToLower(out), "release") {
		t.Logf("the stopped server's log does not mention releasing its claim:\n%s", tail(out, 1500))
	}

	started := time.Now()
	s2 := startServer(t, st, serveOpts{})
	if d := time.Since(started); d >= 10*time.Second {
		t.Errorf("a new server after a clean stop served only %v after it started; want well under the 30 s lapse (a clean stop releases the claim at once)", d)
	}
	if log := strings.ToLower(s2.out.String()); strings.Contains(log, "waiting") || strings.Contains(log, "laps") {
		t.Errorf("the new server waited for a claim a clean stop should have released:\n%s", tail(s2.out.String(), 2000))
	}
	s2.requireGraph(t, "server after a clean stop", graph)
	s2.put(t, "y", client.NodeInput{Type: "object"})
	if r := s2.saveNow(t); r.Unchanged || r.NodeCount != 2 {
		t.Errorf("save by the new server: %+v, want a new save of 2 nodes", r)
	}
}

// putMany puts nodes "bulk-<i>" of size random bytes each, 8 at a time.
func putMany(t *testing.T, s *server, nodes, size int) {
	t.Helper()
	var wg sync.WaitGroup
	adm := s.admin(t)
	errs := make(chan string, nodes)
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				in := client.NodeInput{Type: "mesh", Deps: []string{"root"}, Data: randBytes(size, uint64(1000+i))}
				if _, err := adm.PutNode(t.Context(), fmt.Sprintf("bulk-%03d", i), in); err != nil {
					errs <- fmt.Sprintf("PUT bulk-%03d: %.300v", i, err)
				}
			}
		})
	}
	for i := range nodes {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// minioClient is a client of st's MinIO server.
func minioClient(t testing.TB, st *store) *minio.Client {
	t.Helper()
	mc, err := minio.New(st.minio.Addr, &minio.Options{Creds: credentials.NewStaticV4(st.minio.AccessKey, st.minio.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// objectKey is the bucket key of rel under st's prefix.
func objectKey(st *store, rel string) string {
	if st.prefix == "" {
		return rel
	}
	return st.prefix + "/" + rel
}

// listObjects maps every object under st's prefix (its key relative to the
// prefix) to its size and ETag.
func listObjects(t testing.TB, st *store) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]string{}
	prefix := objectKey(st, "")
	for obj := range minioClient(t, st).ListObjects(ctx, st.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list bucket %s: %v", st.bucket, obj.Err)
		}
		out[strings.TrimPrefix(obj.Key, prefix)] = fmt.Sprintf("%d %s", obj.Size, obj.ETag)
	}
	return out
}

// chunkObjects are the chunks/ objects of objs with their sizes.
func chunkObjects(objs map[string]string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range objs {
		if strings.HasPrefix(k, "chunks/") {
			sz, _, _ := strings.Cut(v, " ")
			out[k], _ = strconv.ParseInt(sz, 10, 64)
		}
	}
	return out
}

// diffObjects describes how two listings differ.
func diffObjects(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "-"+k)
		} else if w != v {
			d = append(d, "~"+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "+"+k)
		}
	}
	slices.Sort(d)
	return strings.Join(d, " ")
}

// lineWith is the first line of out containing s, or "".
func lineWith(out, s string) string {
	for line := range strings.Lines(out) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// gcCount is the number re's first group matches in gc's output.
func gcCount(t testing.TB, re *regexp.Regexp, out string) int {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("gc output does not match %s:\n%s", re, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// requireEntries checks that dir holds nothing but the names allowed
// (a failed command must not leave temporary files next to a data dir).
func requireEntries(t testing.TB, dir string, allowed ...string) {
	t.Helper()
	for rel := range snapshotDir(t, dir) {
		if rel == "." || strings.Contains(rel, string(filepath.Separator)) || slices.Contains(allowed, rel) {
			continue
		}
		t.Errorf("%s holds %s after a failed restore; want only %q", dir, rel, allowed)
	}
}

// pitrStore opens st as pitr's own minio store, for tests that look inside
// saves (chunk trees, packs) to damage them.
func pitrStore(t testing.TB, st *store) *pminio.Store {
	t.Helper()
	ps, err := pminio.New(t.Context(), pminio.Config{Endpoint: st.minio.Addr, Bucket: st.bucket, Prefix: st.prefix,
		AccessKey: st.minio.AccessKey, SecretKey: st.minio.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
