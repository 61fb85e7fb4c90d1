package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestShutdownSave checks that SIGTERM makes a final save (reason shutdown)
// when something changed since the last save, and none when nothing did;
// both exit 0.
func TestShutdownSave(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "x", client.NodeInput{Type: "object", Data: []byte("x")})
	a := s.saveNow(t)
	s.put(t, "y", client.NodeInput{Type: "object", Deps: []string{"x"}})
	graph := s.graph(t)
	s.stop(t)

	saves := listSaves(t, st)
	if len(saves) != 2 || saves[0].ID != a.ID {
		t.Fatalf("saves after SIGTERM: %s, want %s and a final save", fmtSaves(saves), a.ID)
	}
	if last := saves[1]; last.Reason != "shutdown" || last.NodeCount != 2 || !last.Initialized {
		t.Errorf("final save %+v, want reason shutdown, 2 nodes, initialized", last)
	}
	if sj := readSessionJSON(t, s.dataDir); sj.SaveID != saves[1].ID || sj.NodeCount != 2 {
		t.Errorf("session.json after the final save: %+v, want save %s with 2 nodes", sj, saves[1].ID)
	}

	// The same data dir again: the session is back; nothing changes, so
	// stopping saves nothing.
	s = startServer(t, st, serveOpts{dataDir: s.dataDir})
	if in := s.session(t); in.State != "active" {
		t.Errorf("restarted server: state %q, want active", in.State)
	}
	s.requireGraph(t, "server restarted on its data dir", graph)
	s.stop(t)
	if again := listSaves(t, st); len(again) != 2 {
		t.Errorf("saves after stopping with nothing changed: %s, want the same 2", fmtSaves(again))
	}
}

// TestSaveInterval checks that a change is saved by itself within
// --save-interval.
func TestSaveInterval(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{args: []string{"--save-interval", "1s"}})
	s.initSession(t)
	for i := 1; i <= 2; i++ {
		s.put(t, fmt.Sprint("n", i), client.NodeInput{Type: "object"})
		var saves []client.SaveSummary
		waitFor(t, 20*time.Second, fmt.Sprintf("save %d to happen by itself", i), func() (bool, string) {
			saves = s.saves(t)
			return len(saves) == i && saves[i-1].NodeCount == i, fmtSaves(saves)
		})
		if saves[i-1].Reason == "" {
			t.Errorf("interval save %+v has no reason", saves[i-1])
		}
	}
}
