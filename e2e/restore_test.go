package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestSaveKillRestoreRollback saves twice over the API, crashes the server,
// restores the first save by time onto a new data dir, serves it (active,
// exactly the first save's graph), and checks that the rollback sticks:
// the restored state is committed again and `--at latest` brings it. It
// also checks that restore refuses to overwrite a session without --force.
func TestSaveKillRestoreRollback(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s1 := startServer(t, st, serveOpts{})
	s1.initSession(t)
	s1.put(t, "big", client.NodeInput{Type: "mesh", Data: randBytes(1<<20, 2)})
	s1.put(t, "a", client.NodeInput{Type: "object", Deps: []string{"big"}, Data: []byte("a1")})
	s1.put(t, "b", client.NodeInput{Type: "object", Deps: []string{"a", "big"}, Data: []byte("b1")})
	s1.put(t, "empty", client.NodeInput{Type: "marker"})
	s1.setOwner(t, "b", "dora")

	started := time.Now()
	a := s1.saveNow(t)
	if a.Unchanged || a.ID == "" || a.Reason == "" || a.NodeCount != 4 || a.BytesTotal <= 0 ||
		a.BytesUploaded <= 0 || a.ChunksTotal <= 0 || a.ChunksUploaded <= 0 {
		t.Errorf("first POST /v1/saves: %+v, want a new save of 4 nodes with a reason, bytes and chunks uploaded", a)
	}
	if a.Time.Before(started.Add(-time.Second)) || a.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("save A time %v is not when it was taken (%v)", a.Time, started)
	}
	graphA := s1.graph(t)

	again := s1.saveNow(t)
	if !again.Unchanged || again.ID != a.ID || !again.Time.Equal(a.Time) || again.BytesUploaded != 0 || again.ChunksUploaded != 0 {
		t.Errorf("POST /v1/saves with nothing changed: %+v, want unchanged, id %s, time %v, nothing uploaded", again, a.ID, a.Time)
	}
	if saves := s1.saves(t); len(saves) != 1 || saves[0].ID != a.ID {
		t.Errorf("GET /v1/saves after an unchanged save: %s, want only %s", fmtSaves(saves), a.ID)
	}

	// tA, a whole second, is at or after A and before B.
	tA := a.Time.Truncate(time.Second).Add(time.Second)
	waitPast(tA)
	s1.put(t, "a", client.NodeInput{Type: "object", Deps: []string{"big"}, Data: []byte("a2")})
	s1.deleteNode(t, "empty")
	s1.put(t, "c", client.NodeInput{Type: "light", Deps: []string{"b"}, Data: randBytes(3000, 3)})
	s1.setOwner(t, "b", "COMMON")
	b := s1.saveNow(t)
	if b.Unchanged || b.ID == a.ID || !b.Time.After(tA) || b.NodeCount != 4 || b.BytesUploaded <= 0 {
		t.Errorf("second POST /v1/saves: %+v, want a new save of 4 nodes after %v", b, tA)
	}
	if b.BytesUploaded >= b.BytesTotal || b.ChunksUploaded >= b.ChunksTotal {
		t.Errorf("save B uploaded %d of %d bytes, %d of %d chunks: the unchanged 1 MiB node should be deduplicated",
			b.BytesUploaded, b.BytesTotal, b.ChunksUploaded, b.ChunksTotal)
	}
	graphB := s1.graph(t)
	if saves := s1.saves(t); len(saves) != 2 || saves[0].ID != a.ID || saves[1].ID != b.ID {
		t.Fatalf("GET /v1/saves: %s, want [%s %s]", fmtSaves(saves), a.ID, b.ID)
	}
	s1.kill(t)
	// tB, a whole second, is at or after B and before the rollback save.
	tB := b.Time.Truncate(time.Second).Add(time.Second)
	waitPast(tB)

	// Restore A by a time between A and B.
	dirA := filepath.Join(t.TempDir(), "a")
	r := st.mustPitr(t, "restore", "--at", tA.UTC().Format(time.RFC3339), "--data-dir", dirA)
	if !strings.Contains(r.stdout, a.ID) || strings.Contains(r.stdout, b.ID) {
		t.Errorf("restore --at %s: stdout does not name save A %s (only):\n%s", tA.UTC().Format(time.RFC3339), a.ID, r.stdout)
	}
	sj := readSessionJSON(t, dirA)
	if sj.Session != "default" || sj.SaveID != a.ID || !sj.Initialized || sj.NodeCount != 4 || sj.SaveTime.Sub(a.Time).Abs() >= time.Second {
		t.Errorf("session.json after restoring A: %+v, want session default, save %s at %v, initialized, 4 nodes", sj, a.ID, a.Time)
	}
	checkAtSpellings(t, st, a, b, tA)

	s2 := startServer(t, st, serveOpts{dataDir: dirA, args: []string{"--takeover"}})
	if in := s2.session(t); in.State != "active" || in.NodeCount != 4 {
		t.Errorf("server on the restored dir: %+v, want state active with 4 nodes, without init", in)
	}
	s2.requireGraph(t, "server on the restore of A", graphA)
	var saves []client.SaveSummary
	waitFor(t, 30*time.Second, "the rollback save restored:"+a.ID+" as the newest", func() (bool, string) {
		saves = s2.saves(t)
		return len(saves) == 3 && saves[2].Reason == "restored:"+a.ID, fmtSaves(saves)
	})
	rb := saves[2]
	if saves[0].ID != a.ID || saves[1].ID != b.ID || rb.ID == a.ID || rb.ID == b.ID {
		t.Errorf("saves after the rollback: %s, want A, B, then a new save", fmtSaves(saves))
	}
	if !rb.Initialized || rb.NodeCount != 4 || rb.BytesUploaded != 0 || !rb.Time.After(tB) {
		t.Errorf("rollback save %+v: want initialized, 4 nodes, no bytes uploaded, after %v", rb, tB)
	}
	if ls := s2.session(t).LastSave; ls == nil || ls.ID != rb.ID {
		t.Errorf("GET /v1/session last_save = %+v, want the rollback save %s", ls, rb.ID)
	}
	s2.stop(t)
	if saves := listSaves(t, st); len(saves) != 3 || saves[2].ID != rb.ID {
		t.Errorf("after a clean stop with nothing changed, saves %s, want the same 3", fmtSaves(saves))
	}

	// latest is the rolled-back state.
	dirL := filepath.Join(t.TempDir(), "latest")
	if r := st.mustPitr(t, "restore", "--at", "latest", "--data-dir", dirL); !strings.Contains(r.stdout, rb.ID) {
		t.Errorf("restore --at latest: stdout does not name the rollback save %s:\n%s", rb.ID, r.stdout)
	}
	s3 := startServer(t, st, serveOpts{dataDir: dirL})
	if in := s3.session(t); in.State != "active" {
		t.Errorf("server on the latest restore: state %q, want active", in.State)
	}
	s3.requireGraph(t, "server on the restore of latest", graphA)
	s3.stop(t)

	// A data dir holding a session is only overwritten with --force.
	before := snapshotDir(t, dirA)
	at := tB.UTC().Format(time.RFC3339)
	r = st.pitr(t, "restore", "--at", at, "--data-dir", dirA)
	if r.code == 0 || strings.TrimSpace(r.stderr) == "" {
		t.Errorf("restore into a dir holding a session: exit %d, stderr %q; want a failure saying why", r.code, r.stderr)
	}
	if after := snapshotDir(t, dirA); !maps.Equal(before, after) {
		t.Errorf("refused restore changed the data dir:\nbefore %v\nafter  %v", before, after)
	}
	r = st.mustPitr(t, "restore", "--at", at, "--data-dir", dirA, "--force")
	if !strings.Contains(r.stdout, b.ID) {
		t.Errorf("restore --force --at %s: stdout does not name save B %s:\n%s", at, b.ID, r.stdout)
	}
	if sj := readSessionJSON(t, dirA); sj.SaveID != b.ID {
		t.Errorf("session.json after the forced restore of B: save %s, want %s", sj.SaveID, b.ID)
	}
	s4 := startServer(t, st, serveOpts{dataDir: dirA})
	s4.requireGraph(t, "server on the forced restore of B", graphB)
}

// checkAtSpellings restores by other spellings of times between saves a and
// b (a fractional RFC 3339 time, a zone offset, a local time without zone)
// and one after b (minute precision, local, with a space).
func checkAtSpellings(t *testing.T, st *store, a, b client.SaveResult, tA time.Time) {
	t.Helper()
	tzName, loc := "Asia/Kolkata", time.UTC
	if l, err := time.LoadLocation(tzName); err == nil {
		loc = l
	} else {
		tzName = "UTC"
	}
	mid := a.Time.Add(b.Time.Sub(a.Time) / 2)
	cases := []struct{ name, at, want string }{
		{"fractional seconds", mid.UTC().Format(time.RFC3339Nano), a.ID},
		{"zone offset", tA.In(time.FixedZone("", -(3*3600 + 1800))).Format(time.RFC3339), a.ID},
		{"local time without zone", tA.In(loc).Format("2006-01-02T15:04:05"), a.ID},
		{"local minute with a space", time.Now().Add(2 * time.Minute).In(loc).Format("2006-01-02 15:04"), b.ID},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "at")
		r := runPitr(t, []string{st.secret}, append(st.env, "TZ="+tzName),
			append(append([]string{"restore"}, st.args...), "--at", c.at, "--data-dir", dir)...)
		if r.code != 0 {
			t.Errorf("restore --at %q (%s, TZ=%s): exit %d: %s", c.at, c.name, tzName, r.code, r.stderr)
			continue
		}
		if sj := readSessionJSON(t, dir); sj.SaveID != c.want || !strings.Contains(r.stdout, c.want) {
			t.Errorf("restore --at %q (%s, TZ=%s) restored save %s, want %s; stdout:\n%s", c.at, c.name, tzName, sj.SaveID, c.want, r.stdout)
		}
	}
}

// TestRestoreAtErrors checks restores that must fail: no save at or before
// the time (naming the earliest save), a malformed time, a session without
// saves; each leaves the data dir as it was.
func TestRestoreAtErrors(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	dir := filepath.Join(t.TempDir(), "never")
	if r := st.pitr(t, "restore", "--at", "latest", "--data-dir", dir); r.code == 0 {
		t.Errorf("restore --at latest of a session without saves: exit 0\n%s", r.stdout)
	}
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "n", client.NodeInput{Type: "object", Data: []byte("x")})
	a := s.saveNow(t)
	s.stop(t)

	empty := t.TempDir()
	early := a.Time.Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, d := range []string{dir, empty} {
		r := st.pitr(t, "restore", "--at", early, "--data-dir", d)
		if r.code == 0 || !strings.Contains(r.stderr, a.ID) {
			t.Errorf("restore --at %s, before the first save: exit %d, stderr %q; want a failure naming the earliest save %s", early, r.code, r.stderr, a.ID)
		}
	}
	if _, err := os.Stat(dir); err == nil {
		if left := snapshotDir(t, dir); len(left) > 1 {
			t.Errorf("failed restore left files in %s: %v", dir, slices.Sorted(maps.Keys(left)))
		}
	}
	if left := snapshotDir(t, empty); len(left) != 1 {
		t.Errorf("failed restore left files in the empty dir %s: %v", empty, slices.Sorted(maps.Keys(left)))
	}

	for _, at := range []string{"yesterday", "2025-13-45T25:61:00Z", "12/01/2025"} {
		r := st.pitr(t, "restore", "--at", at, "--data-dir", dir)
		if r.code == 0 || !strings.Contains(r.stderr, at) {
			t.Errorf("restore --at %q: exit %d, stderr %q; want a failure naming the bad time", at, r.code, r.stderr)
		}
	}
	if r := st.pitr(t, "restore", "--data-dir", dir); r.code == 0 || !strings.Contains(r.stderr, "--at") {
		t.Errorf("restore without --at: exit %d, stderr %q; want a failure naming --at", r.code, r.stderr)
	}
	if r := st.pitr(t, "restore", "--session", "other", "--at", "latest", "--data-dir", dir); r.code == 0 || !strings.Contains(r.stderr, "other") {
		t.Errorf("restore of a session without saves: exit %d, stderr %q; want a failure naming the session", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		if left := snapshotDir(t, dir); len(left) > 1 {
			t.Errorf("failed restores left files in %s: %v", dir, slices.Sorted(maps.Keys(left)))
		}
	}
}

// waitPast returns once the clock is past ts.
func waitPast(ts time.Time) {
	for d := time.Until(ts); d >= 0; d = time.Until(ts) {
		time.Sleep(d + time.Millisecond)
	}
}

// listSaves is `pitr saves --json`.
func listSaves(t testing.TB, st *store, args ...string) []client.SaveSummary {
	t.Helper()
	r := st.mustPitr(t, "saves", append([]string{"--json"}, args...)...)
	return decodeSaves(t, r.stdout)
}
