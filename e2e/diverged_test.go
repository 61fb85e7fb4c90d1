package e2e

import (
	"encoding/json"
	"maps"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestFencedRestartSetsAside: server A saves x; B takes over (--takeover),
// puts y and saves; A, fenced, still takes edit z. Both stop, and A is
// restarted on its own data dir. A must not commit its stale graph over
// B's save: it serves B's newest (y, no z), sets its copy aside, and the
// copy's z can be applied deliberately.
func TestFencedRestartSetsAside(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	a := startSaved(t, st)
	a.put(t, "z", client.NodeInput{Type: "object", Data: []byte("z")}) // not saved before the takeover
	events, code := a.openEvents(t, "watcher")
	if code != 200 {
		t.Fatalf("GET /v1/events on A: %d", code)
	}
	defer events.close()

	b := startServer(t, st, serveOpts{args: []string{"--takeover"}})
	b.put(t, "y", client.NodeInput{Type: "object", Data: []byte("y")})
	yes := b.saveNow(t)

	_, err := a.admin(t).Save(t.Context())
	if code, msg := answer(t, err); code != 503 || !strings.Contains(msg, "fenced") {
		t.Fatalf("save by the fenced server: %d %s, want 503 fenced", code, msg)
	}
	// Fenced, A refuses edits naming the holder, tells its clients, and
	// still serves reads.
	_, err = a.admin(t).PutNode(t.Context(), "w", client.NodeInput{Type: "object"})
	if code, msg := answer(t, err); code != 503 || !strings.Contains(msg, "holds the writer claim") {
		t.Errorf("edit on the fenced server: %d %s, want 503 naming the new holder", code, msg)
	}
	events.waitEvent(t, 30*time.Second, "fenced")
	if ids := nodeIDs(a.graph(t)); ids != "x,z" {
		t.Errorf("fenced server reads %s, want x,z", ids)
	}
	if r := runPitr(t, nil, []string{"ADMIN_PASSWORD=" + adminPW}, "save", "--server", a.url); r.code == 0 || !strings.Contains(r.stderr, "fenced") {
		t.Errorf("pitr save on the fenced server: exit %d\n%s", r.code, r.stderr)
	}
	status := runPitr(t, nil, nil, "status", "--server", a.url)
	if status.code != 0 || !strings.Contains(status.stdout, "fenced:     true") {
		t.Errorf("pitr status of the fenced server: exit %d\n%s%s", status.code, status.stdout, status.stderr)
	}
	b.stop(t)
	_ = a.cmd.Process.Signal(syscall.SIGTERM) // its final save fails: fenced
	<-a.done

	a2 := startServer(t, st, serveOpts{dataDir: a.dataDir})
	saves := listSaves(t, st)
	if newest := saves[len(saves)-1]; newest.ID != yes.ID {
		t.Fatalf("newest save after the fenced server restarted: %s (%s), want B's %s: committed work was superseded",
			newest.ID, newest.Reason, yes.ID)
	}
	graph := a2.graph(t)
	if ids := nodeIDs(graph); ids != "x,y" {
		t.Fatalf("restarted fenced server serves %s, want B's newest save x,y", ids)
	}
	log := a2.out.String()
	if !strings.Contains(log, "diverged") || !strings.Contains(log, yes.ID) || !strings.Contains(log, "pitr diverged") {
		t.Errorf("start-up log does not name the divergence, the newest save and how to recover:\n%s", tail(log, 3000))
	}

	// The set-aside copy: listed, shows z added, and z applies.
	list := st.diverged(t, 0, "list", "--data-dir", a.dataDir)
	lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("diverged list:\n%s\nwant a header and one copy", list.stdout)
	}
	name := strings.Fields(lines[1])[0]
	if r := st.diverged(t, -1, "show", name, "--data-dir", a.dataDir, "--session", "other"); !strings.Contains(r.stderr, "set aside from session") {
		t.Errorf("diverged show against another session: %s, want a refusal naming the copy's origin", r.stderr)
	}
	show := st.diverged(t, 0, "show", name, "--json", "--data-dir", a.dataDir)
	var changes []struct{ ID, Change string }
	if err := json.Unmarshal([]byte(show.stdout), &changes); err != nil {
		t.Fatalf("diverged show --json: %v\n%s", err, show.stdout)
	}
	if len(changes) != 1 || changes[0].ID != "z" || changes[0].Change != "added" {
		t.Fatalf("diverged show: %+v, want z added only", changes)
	}
	if r := st.diverged(t, -1, "apply", name, "x", "--data-dir", a.dataDir, "--server", a2.url, "--password", adminPW); !strings.Contains(r.stderr, "did not change") {
		t.Errorf("diverged apply of a node the copy did not change: %s", r.stderr)
	}
	st.diverged(t, 0, "apply", name, "z", "--data-dir", a.dataDir, "--server", a2.url, "--password", adminPW)
	if ids := nodeIDs(a2.graph(t)); ids != "x,y,z" {
		t.Fatalf("after applying z: %s, want x,y,z", ids)
	}
	if r := a2.saveNow(t); r.Unchanged || r.NodeCount != 3 {
		t.Fatalf("save after applying z: %+v, want a new save of 3 nodes", r)
	}
	a2.stop(t)

	// --force-local keeps the old behaviour, saying so: the copy's state is
	// committed over the newest save.
	aside := filepath.Join(a.dataDir, "diverged", name)
	a3 := startServer(t, st, serveOpts{dataDir: aside, args: []string{"--force-local"}})
	waitFor(t, time.Minute, "the forced local state to be saved", func() (bool, string) {
		saves := listSaves(t, st)
		n := saves[len(saves)-1]
		return n.Reason == "local_changes" && n.NodeCount == 2, n.Reason
	})
	if !strings.Contains(a3.out.String(), "--force-local") {
		t.Errorf("--force-local start does not say what it does:\n%s", tail(a3.out.String(), 2000))
	}
	a3.stop(t)
	st.diverged(t, 0, "drop", name, "--data-dir", a.dataDir)
	if list := st.diverged(t, 0, "list", "--data-dir", a.dataDir); !strings.Contains(list.stdout, "no set-aside copies") {
		t.Errorf("diverged list after drop:\n%s", list.stdout)
	}
	st.diverged(t, -1, "drop", name, "--data-dir", a.dataDir)
}

// TestLapseRestartYields: A is killed, B takes over once A's claim lapses
// and saves y; A restarted on its old data dir serves B's newest save.
func TestLapseRestartYields(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	a := startSaved(t, st)
	a.kill(t)

	b := startServer(t, st, serveOpts{}) // waits for the lapse
	b.put(t, "y", client.NodeInput{Type: "object", Data: []byte("y")})
	yes := b.saveNow(t)
	b.stop(t)

	a2 := startServer(t, st, serveOpts{dataDir: a.dataDir})
	if ids := nodeIDs(a2.graph(t)); ids != "x,y" {
		t.Fatalf("restarted server serves %s, want the newest save x,y", ids)
	}
	a2.stop(t)
	saves := listSaves(t, st)
	if newest := saves[len(saves)-1]; newest.ID != yes.ID {
		t.Fatalf("newest save %s (%s), want %s", newest.ID, newest.Reason, yes.ID)
	}
}

// TestDataDirBelongsToItsStore: a data dir of one store is refused by a
// server of another, naming both and writing nothing; --adopt moves it.
func TestDataDirBelongsToItsStore(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	a := startSaved(t, st)
	a.stop(t)

	other := minioStore(st.minio, st.bucket, "other")
	before := snapshotDir(t, a.dataDir)
	p := startProc(t, []string{st.secret}, other.env, serveArgs(other, serveOpts{dataDir: a.dataDir}, "127.0.0.1:"+freePort(t))...)
	<-p.done
	out := p.out.String()
	if p.exitCode() == 0 || !strings.Contains(out, st.url) || !strings.Contains(out, other.url) || !strings.Contains(out, "--adopt") {
		t.Fatalf("serve with another store's data dir: exit %d\n%s\nwant a refusal naming both stores and --adopt", p.exitCode(), out)
	}
	if after := snapshotDir(t, a.dataDir); !maps.Equal(before, after) {
		t.Fatal("the refused data dir was changed")
	}
	if objs := listObjects(t, st); len(keysUnder(objs, "other/")) != 0 {
		t.Fatalf("the refusing server wrote to the other store: %v", keysUnder(objs, "other/"))
	}

	b := startServer(t, other, serveOpts{dataDir: a.dataDir, args: []string{"--adopt"}})
	waitFor(t, time.Minute, "the adopted data dir to be saved into the new store", func() (bool, string) {
		r := other.pitr(t, "saves", "--json")
		return r.code == 0 && strings.Contains(r.stdout, "local_changes"), r.stdout
	})
	if ids := nodeIDs(b.graph(t)); ids != "x" {
		t.Fatalf("adopted data dir serves %s, want x", ids)
	}
	b.stop(t)
}

// startSaved starts a server on st, initializes the session, puts node x
// and saves.
func startSaved(t *testing.T, st *store) *server {
	t.Helper()
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "x", client.NodeInput{Type: "object", Data: []byte("x")})
	s.saveNow(t)
	return s
}

// diverged runs `pitr diverged <sub> <args> <st.args>` and requires exit
// code want (-1: any failure).
func (st *store) diverged(t testing.TB, want int, sub string, args ...string) result {
	t.Helper()
	r := runPitr(t, []string{st.secret}, st.env, append(append([]string{"diverged", sub}, args...), st.args...)...)
	if (want < 0 && r.code == 0) || (want >= 0 && r.code != want) {
		t.Fatalf("pitr diverged %s %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub, strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

func nodeIDs(g []node) string {
	ids := make([]string, len(g))
	for i, n := range g {
		ids[i] = n.ID
	}
	return strings.Join(ids, ",")
}

func keysUnder(objs map[string]string, prefix string) []string {
	var out []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}
