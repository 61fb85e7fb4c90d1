package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestGCRepacksAndOlderSavesStillRestore: a session whose saves each
// change most of its nodes, so that the saver moves the rest out of the
// older packs and the older saves keep naming them. `pitr gc` repacks
// those packs (forward records under chunks/f/, the packs deleted), and
// then every save still verifies, restores by its time and serves exactly
// its graph, read from real MinIO through the forward records.
func TestGCRepacksAndOlderSavesStillRestore(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	for i := range 10 {
		s.put(t, fmt.Sprint("keep", i), client.NodeInput{Type: "object", Data: randBytes(3000, uint64(900+i))})
	}
	const saves = 4
	var ids []string
	graphs := map[string][]node{}
	for k := range saves {
		for i := range 30 {
			s.put(t, fmt.Sprint("churn", i), client.NodeInput{Type: "object", Data: randBytes(3000, uint64(1000*k+i))})
		}
		r := s.saveNow(t)
		ids = append(ids, r.ID)
		graphs[r.ID] = s.graph(t)
	}
	s.stop(t)

	before := listObjects(t, st)
	r := st.mustPitr(t, "gc", "--grace", "0s")
	repacked := gcCount(t, regexp.MustCompile(`repacked (\d+) pack`), r.stdout)
	forwards, bundles := 0, 0
	for k := range listObjects(t, st) {
		switch {
		case strings.HasPrefix(k, "chunks/f/bundle/"):
			bundles++
		case strings.HasPrefix(k, "chunks/f/"):
			forwards++
		}
	}
	if repacked == 0 || forwards != repacked {
		t.Fatalf("gc repacked %d packs, the bucket has %d forward records; want the same number > 0:\n%s", repacked, forwards, r.stdout)
	}
	// And one bundle of them, for the restores of older saves below.
	if bundled := gcCount(t, regexp.MustCompile(`bundled (\d+) forward record`), r.stdout); bundles != 1 || bundled != forwards {
		t.Fatalf("%d bundles in the bucket, of %d records; want one, of the %d records:\n%s", bundles, bundled, forwards, r.stdout)
	}
	if packBytes(listObjects(t, st)) >= packBytes(before) {
		t.Errorf("gc did not shrink the packs:\n%s", r.stdout)
	}
	st.mustPitr(t, "verify")
	st.mustPitr(t, "verify", "--read-data")
	for _, sv := range listSaves(t, st) {
		dir := filepath.Join(t.TempDir(), "restored")
		st.mustPitr(t, "restore", "--at", sv.Time.UTC().Format(time.RFC3339Nano), "--data-dir", dir)
		if sj := readSessionJSON(t, dir); sj.SaveID != sv.ID {
			t.Fatalf("restore --at the time of save %s restored %s", sv.ID, sj.SaveID)
		}
		s := startServer(t, st, serveOpts{dataDir: dir})
		s.requireGraph(t, "server on the restore of save "+sv.ID, graphs[sv.ID])
		s.stop(t)
	}
	// A second gc finds nothing more to repack.
	r = st.mustPitr(t, "gc", "--grace", "0s")
	if strings.Contains(r.stdout, "repacked") {
		t.Errorf("a second gc repacked again:\n%s", r.stdout)
	}
}

// packBytes sums the sizes of the packs among objs (as listObjects gives).
func packBytes(objs map[string]string) int64 {
	var n int64
	for k, size := range chunkObjects(objs) {
		if strings.HasPrefix(k, "chunks/p/") {
			n += size
		}
	}
	return n
}
