package replicate

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/session"
)

// With a journal, a save does not rewrite the data dir's graph: it writes
// session.json (the save and the journal position it holds) and leaves the
// changes in the journal, until the journal is large enough for a
// checkpoint, which writes the whole graph and releases the journal.
func TestSaveWritesTheGraphOnlyAtCheckpoints(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	dir := t.TempDir()
	j, err := journal.Open(dir, 1, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	s := session.New()
	s.SetJournal(j, 0)
	sv := New(s, Config{Store: st, Session: "test", DataDir: dir, Journal: j, CheckpointBytes: 200 << 10})
	graphFile := filepath.Join(dir, datadir.GraphFile)
	stat := func() os.FileInfo {
		fi, err := os.Stat(graphFile)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	fill(t, s, 20, 1000, 1)
	if _, err := sv.Save(ctx, "api"); err != nil { // the first: no graph file yet, so written
		t.Fatal(err)
	}
	first := stat()
	fill(t, s, 2, 1000, 2)
	r, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if fi := stat(); !os.SameFile(fi, first) || fi.ModTime() != first.ModTime() {
		t.Fatal("a small save rewrote the graph file")
	}
	meta, _, err := datadir.LoadMeta(dir)
	if err != nil || meta.SaveID != r.ID || meta.Pending || meta.SaveLSN != s.Snapshot().JournalLSN || meta.SaveLSN <= meta.JournalLSN {
		t.Fatalf("session.json after a small save: %+v %v", meta, err)
	}
	// The data dir reads back as the save: the journal holds the rest.
	if _, _, err := (datadir.Dir{Path: dir}).Checkpoint(); err != nil {
		t.Fatal(err)
	}
	l, err := datadir.Load(dir)
	if err != nil || l.Dirty || len(l.Graph.Nodes) != 20 || l.Meta.SaveID != r.ID {
		t.Fatalf("data dir after a checkpoint: %+v %v", l, err)
	}
	j2, err := journal.Open(dir, l.Meta.JournalLSN+1, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	s2 := session.FromGraph(l.Graph)
	s2.SetJournal(j2, l.Meta.JournalLSN)
	sv2 := New(s2, Config{Store: st, Session: "test", DataDir: dir, Journal: j2, CheckpointBytes: 200 << 10})
	before := stat()
	fill(t, s2, 20, 20000, 3) // 400 kB of journal: a checkpoint is due
	if _, err := sv2.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if fi := stat(); os.SameFile(fi, before) {
		t.Fatal("no checkpoint after 400 kB of journal")
	}
	if n := j2.Unreleased(); n != 0 {
		t.Errorf("journal not released at the checkpoint: %d bytes", n)
	}
}
