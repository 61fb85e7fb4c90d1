package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/internal/miniotest"
)

// TestEmptyDataDirS3Store saves through a minio:// store, then starts a
// server with an empty data dir on the same bucket as an s3:// store: it
// comes up with the newest graph, active, and its saves are listed through
// the minio:// store again.
func TestEmptyDataDirS3Store(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	bucket := miniotest.Bucket(t)
	mst := minioStore(srv, bucket, "")
	s1 := startServer(t, mst, serveOpts{})
	s1.initSession(t)
	s1.put(t, "big", client.NodeInput{Type: "mesh", Data: randBytes(1<<20, 5)})
	s1.put(t, "x", client.NodeInput{Type: "object", Deps: []string{"big"}, Owner: "eve"})
	a := s1.saveNow(t)
	s1.put(t, "y", client.NodeInput{Type: "object", Deps: []string{"x"}, Data: []byte("y")})
	graph := s1.graph(t)
	s1.stop(t) // saves y with reason shutdown

	sst := s3Store(srv, bucket)
	s2 := startServer(t, sst, serveOpts{})
	if in := s2.session(t); in.State != "active" || in.NodeCount != 3 {
		t.Errorf("server with an empty data dir on an s3:// store: %+v, want active with 3 nodes", in)
	}
	s2.requireGraph(t, "server restored from the s3:// store", graph)
	saves := s2.saves(t)
	if len(saves) != 2 || saves[0].ID != a.ID || saves[1].Reason != "shutdown" {
		t.Fatalf("saves through the s3:// store: %s, want %s then a shutdown save", fmtSaves(saves), a.ID)
	}
	if sj := readSessionJSON(t, s2.dataDir); sj.SaveID != saves[1].ID || !sj.Initialized {
		t.Errorf("session.json of the restored data dir: %+v, want save %s, initialized", sj, saves[1].ID)
	}
	if out := s2.out.String(); strings.Contains(out, "DEBUG") {
		t.Errorf("pitr serve with an s3:// store logs debug lines at the default log level (info):\n%s", tail(out, 1500))
	}
	s2.put(t, "z", client.NodeInput{Type: "object"})
	c := s2.saveNow(t)
	if c.Unchanged || c.NodeCount != 4 {
		t.Errorf("save through the s3:// store: %+v, want a new save of 4 nodes", c)
	}
	s2.stop(t)
	if saves := listSaves(t, mst); len(saves) != 3 || saves[2].ID != c.ID {
		t.Errorf("pitr saves through the minio:// store: %s, want the s3:// save %s last", fmtSaves(saves), c.ID)
	}
}

// TestStoreLayout checks the objects in the bucket under a prefix: packs of
// chunks under chunks/p/, every chunk lz4-compressed bytes that hash to its
// name (pitr verify --read-data checks each against its id), and the
// session's manifests under sessions/<session>/; and that a second session
// in the store reuses the first one's chunks.
func TestStoreLayout(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	st := minioStore(srv, miniotest.Bucket(t), "team/x")
	big := randBytes(1<<20, 6)
	s1 := startServer(t, st, serveOpts{args: []string{"--session", "alpha"}})
	s1.initSession(t)
	s1.put(t, "big", client.NodeInput{Type: "mesh", Data: big})
	s1.put(t, "n", client.NodeInput{Type: "object", Data: []byte("n1")})
	a1 := s1.saveNow(t)
	s1.put(t, "n", client.NodeInput{Type: "object", Data: []byte("n2")})
	s1.saveNow(t)

	s2 := startServer(t, st, serveOpts{args: []string{"--session", "beta"}})
	s2.initSession(t)
	s2.put(t, "big", client.NodeInput{Type: "mesh", Data: big})
	b1 := s2.saveNow(t)
	if b1.BytesUploaded >= a1.BytesUploaded/2 || b1.ChunksUploaded >= b1.ChunksTotal {
		t.Errorf("session beta's first save uploaded %d bytes, %d of %d chunks; session alpha's uploaded %d: sessions in one store should share the 1 MiB node's chunks",
			b1.BytesUploaded, b1.ChunksUploaded, b1.ChunksTotal, a1.BytesUploaded)
	}

	mc, err := minio.New(srv.Addr, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hex64 := regexp.MustCompile(`^chunks/[0-9a-f]{64}$`)
	hex32 := regexp.MustCompile(`^chunks/p/[0-9a-f]{32}$`)
	packs := 0
	sessions := map[string]int{}
	for obj := range mc.ListObjects(ctx, st.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatalf("list bucket %s: %v", st.bucket, obj.Err)
		}
		rel, ok := strings.CutPrefix(obj.Key, "team/x/")
		if !ok {
			t.Errorf("object %q is outside the store's prefix team/x/", obj.Key)
			continue
		}
		switch {
		case hex32.MatchString(rel):
			packs++
		case strings.HasPrefix(rel, "chunks/") && !hex64.MatchString(rel):
			t.Errorf("object %q under chunks/ is neither a pack nor a chunk named by its SHA-256", obj.Key)
		case strings.HasPrefix(rel, "sessions/"):
			name, _, _ := strings.Cut(strings.TrimPrefix(rel, "sessions/"), "/")
			sessions[name]++
		}
	}
	if packs < 2 {
		t.Errorf("%d packs under team/x/chunks/p/, want one per save that uploaded chunks", packs)
	}
	if sessions["alpha"] < 2 || sessions["beta"] < 1 || len(sessions) != 2 {
		t.Errorf("objects under team/x/sessions/: %v, want at least 2 for alpha (2 saves) and 1 for beta", sessions)
	}
	for _, name := range []string{"alpha", "beta"} {
		st.mustPitr(t, "verify", "--read-data", "--session", name)
	}
}

// TestSavesAndSessionsCommands checks `pitr saves` (table and --json, oldest
// first, the same saves as GET /v1/saves) and `pitr sessions`.
func TestSavesAndSessionsCommands(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{args: []string{"--session", "demo"}})
	s.initSession(t)
	var ids []string
	for i := range 3 {
		s.put(t, "n", client.NodeInput{Type: "object", Data: randBytes(100+i, uint64(i))})
		ids = append(ids, s.saveNow(t).ID)
	}
	api := s.saves(t)
	cli := listSaves(t, st, "--session", "demo")
	if len(cli) != 3 || !slices.Equal(saveIDs(cli), ids) {
		t.Errorf("pitr saves --json ids %q, want %q (oldest first)", saveIDs(cli), ids)
	}
	for i := range min(len(cli), len(api)) {
		c, a := cli[i], api[i]
		if c.ID != a.ID || !c.Time.Equal(a.Time) || c.Reason != a.Reason || c.Initialized != a.Initialized ||
			c.NodeCount != a.NodeCount || c.BytesTotal != a.BytesTotal || c.BytesUploaded != a.BytesUploaded {
			t.Errorf("save %d: pitr saves --json %+v, GET /v1/saves %+v", i, c, a)
		}
		if c.Reason == "" || !c.Initialized || c.NodeCount != 1 || c.BytesTotal <= 0 {
			t.Errorf("save %d: %+v, want a reason, initialized, 1 node, bytes", i, c)
		}
		if i > 0 && c.Time.Before(cli[i-1].Time) {
			t.Errorf("pitr saves --json is not oldest first: %s", fmtSaves(cli))
		}
	}
	// Every flag has an env var PITR_<FLAG>.
	r := runPitr(t, []string{st.secret}, append(st.env, "PITR_STORE="+st.url, "PITR_SESSION=demo"), "saves", "--json")
	if r.code != 0 || !slices.Equal(saveIDs(decodeSaves(t, r.stdout)), ids) {
		t.Errorf("PITR_STORE=… PITR_SESSION=demo pitr saves --json: exit %d, stdout %s, stderr %s; want the saves %q", r.code, r.stdout, r.stderr, ids)
	}
	r = st.mustPitr(t, "saves", "--session", "demo")
	for _, id := range ids {
		if !strings.Contains(r.stdout, id) {
			t.Errorf("pitr saves does not list %s:\n%s", id, r.stdout)
		}
	}
	r = st.mustPitr(t, "sessions")
	if !strings.Contains(r.stdout, "demo") {
		t.Errorf("pitr sessions does not list session demo:\n%s", r.stdout)
	}
	if r := st.mustPitr(t, "saves"); strings.Contains(r.stdout, ids[0]) {
		t.Errorf("pitr saves of session default lists a save of demo:\n%s", r.stdout)
	}
}

// TestBadCredentials checks that wrong store credentials fail a command with
// a message naming the bucket and never showing the secret.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	st := minioStore(srv, miniotest.Bucket(t), "")
	st.secret = "wrong-secret-e2e-0123456789"
	st.env = []string{"MINIO_ROOT_USER=" + srv.AccessKey, "MINIO_ROOT_PASSWORD=" + st.secret}
	r := st.pitr(t, "saves")
	if r.code == 0 || !strings.Contains(r.stderr, st.bucket) {
		t.Errorf("pitr saves with wrong credentials: exit %d, stderr %q; want a failure naming bucket %s", r.code, r.stderr, st.bucket)
	}
}

// decodeSaves decodes `pitr saves --json`, checking every object's fields.
func decodeSaves(t testing.TB, out string) []client.SaveSummary {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("pitr saves --json: not a JSON array: %v\n%s", err, out)
	}
	saves := make([]client.SaveSummary, len(raw))
	for i, o := range raw {
		requireKeys(t, "pitr saves --json", o, saveSummaryKeys)
		var tm struct {
			Time string `json:"time"`
		}
		if err := json.Unmarshal(o, &saves[i]); err != nil || json.Unmarshal(o, &tm) != nil {
			t.Fatalf("pitr saves --json: %v: %s", err, o)
		}
		if !strings.HasSuffix(tm.Time, "Z") && !strings.HasSuffix(tm.Time, "+00:00") {
			t.Errorf("pitr saves --json: time %q is not in UTC", tm.Time)
		}
	}
	return saves
}

func saveIDs(saves []client.SaveSummary) []string {
	ids := make([]string, len(saves))
	for i, s := range saves {
		ids[i] = s.ID
	}
	return ids
}
