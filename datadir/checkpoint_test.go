package datadir

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/session"
)

// journalPut appends a put of node id with data to dir's journal, durably.
func journalPut(t *testing.T, j *journal.Journal, id, data string, version uint64) {
	t.Helper()
	n := &session.Node{ID: id, Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte(data), Version: version}
	if err := j.Wait(context.Background(), j.Append(session.Op{Kind: session.OpPut, Node: n})); err != nil {
		t.Fatal(err)
	}
}

// Checkpoint folds the journal's changes after journal_lsn into the graph,
// marks it pending and removes the journal; a data dir with only a journal
// (never saved) gets a graph; a torn tail is reported, not applied.
func TestCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sess")
	if err := dirAt(dir).write(graphBytes(t, "one"), Meta{Session: "s", SaveID: "x", JournalLSN: 1}); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(dir, 1, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	journalPut(t, j, "a", "covered", 1) // lsn 1: the graph holds it
	journalPut(t, j, "a", "two", 2)     // lsn 2
	journalPut(t, j, "b", "new", 1)     // lsn 3
	j.Close()
	applied, torn, err := dirAt(dir).Checkpoint()
	if err != nil || torn != nil || applied != 2 {
		t.Fatalf("Checkpoint = %d, %v, %v; want 2 changes", applied, torn, err)
	}
	l, err := Load(dir)
	if err != nil || !l.Dirty || l.Meta.JournalLSN != 3 || l.Meta.SaveID != "x" || len(l.Graph.Nodes) != 2 || string(l.Graph.Nodes[0].Data) != "two" {
		t.Fatalf("after Checkpoint: %+v %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dir, journal.Dir)); !os.IsNotExist(err) {
		t.Fatalf("journal still there: %v", err)
	}
	if applied, _, err := dirAt(dir).Checkpoint(); err != nil || applied != 0 {
		t.Fatalf("second Checkpoint: %d %v", applied, err)
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	j, err = journal.Open(fresh, 1, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	journalPut(t, j, "only", "x", 1)
	j.Close()
	seg, _ := filepath.Glob(filepath.Join(fresh, journal.Dir, "*.log"))
	f, _ := os.OpenFile(seg[0], os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.Write([]byte{9, 1, 2}) // a torn record
	f.Close()
	applied, torn, err = dirAt(fresh).Checkpoint()
	if err != nil || torn == nil || applied != 1 {
		t.Fatalf("Checkpoint of a journal-only dir with a torn tail: %d, %v, %v", applied, torn, err)
	}
	if l, err := Load(fresh); err != nil || len(l.Graph.Nodes) != 1 || !l.Dirty {
		t.Fatalf("journal-only dir after Checkpoint: %+v %v", l, err)
	}
}

// A save writes session.json alone (save_lsn) and leaves the changes it
// holds in the journal: Checkpoint folds them in without taking them for
// unsaved ones, and only changes after save_lsn are pending. A data dir
// whose journal lost changes its base save holds forgets that base.
func TestCheckpointUpToTheSave(t *testing.T) {
	for _, tc := range []struct {
		name        string
		saveLSN     uint64
		wantPending bool
		wantBase    string
	}{
		{"the save holds every change", 2, false, "x"},
		{"a change after the save", 1, true, "x"},
		{"the journal lost changes the save holds", 5, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "sess")
			if err := dirAt(dir).write(graphBytes(t, "one"), Meta{Session: "s", SaveID: "x", SaveLSN: tc.saveLSN}); err != nil {
				t.Fatal(err)
			}
			j, err := journal.Open(dir, 1, journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			journalPut(t, j, "a", "two", 2) // lsn 1
			journalPut(t, j, "b", "new", 1) // lsn 2
			j.Close()
			if _, _, err := dirAt(dir).Checkpoint(); err != nil {
				t.Fatal(err)
			}
			l, err := Load(dir)
			if err != nil || l.Dirty != tc.wantPending || l.Meta.SaveID != tc.wantBase || len(l.Graph.Nodes) != 2 {
				t.Fatalf("after Checkpoint: dirty %v base %q nodes %d (%v); want dirty %v base %q",
					l.Dirty, l.Meta.SaveID, len(l.Graph.Nodes), err, tc.wantPending, tc.wantBase)
			}
		})
	}
}

// WriteGraph streams a graph into the data dir and returns its hash, the
// one session.json records: the data dir loads back clean.
func TestWriteGraph(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sess")
	raw := graphBytes(t, "streamed")
	sha, err := dirAt(dir).writeGraph(func(w io.Writer) error { _, err := w.Write(raw); return err }, Meta{Session: "s", SaveID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir)
	if err != nil || l.Dirty || l.GraphSHA256 != sha || l.Meta.GraphSHA256 != sha || len(l.Graph.Nodes) != 1 {
		t.Fatalf("after WriteGraph: %+v %v (hash %s)", l, err, sha)
	}
	if _, err := dirAt(dir).writeGraph(func(io.Writer) error { return errors.New("encode failed") }, Meta{Session: "s"}); err == nil {
		t.Fatal("a failed encode was written")
	}
	if l2, err := Load(dir); err != nil || l2.GraphSHA256 != sha {
		t.Fatalf("a failed WriteGraph changed the data dir: %v", err)
	}
}
