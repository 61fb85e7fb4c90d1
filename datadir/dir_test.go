package datadir

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/session"
)

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testDir is a data dir of session "s" of store "file:///st", written by
// host "h" on a fake clock stopped at testNow.
func testDir(t *testing.T) Dir {
	t.Helper()
	return Dir{Path: filepath.Join(t.TempDir(), "data"), Session: "s", Store: "file:///st", Writer: "h", Clock: clock.NewFake(testNow)}
}

func testGraph(data string, lsn uint64) *session.Graph {
	return &session.Graph{Initialized: true, JournalLSN: lsn, Nodes: []*session.Node{
		{ID: "a", Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte(data), Version: 1},
	}}
}

func loadLocal(t *testing.T, d Dir) *Local {
	t.Helper()
	l, err := Load(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkOwner checks the fields every transition writes: whose session it
// is and when it was written.
func checkOwner(t *testing.T, m Meta, writer string) {
	t.Helper()
	if m.Session != "s" || m.StoreURL != "file:///st" || m.Writer != writer || !m.Updated.Equal(testNow) {
		t.Errorf("session.json names session %q store %q writer %q updated %s; want s, file:///st, %q, %s",
			m.Session, m.StoreURL, m.Writer, m.Updated, writer, testNow)
	}
}

func saveOf(m Meta) Save {
	if m.SaveTime == nil {
		return Save{ID: m.SaveID}
	}
	return Save{ID: m.SaveID, Time: *m.SaveTime}
}

var (
	saveA = Save{ID: "a", Time: testNow.Add(-time.Hour)}
	saveB = Save{ID: "b", Time: testNow.Add(-time.Minute)}
)

func TestEdited(t *testing.T) {
	d := testDir(t)
	f, err := d.Edited(testGraph("one", 7), &saveA, true)
	if err != nil {
		t.Fatal(err)
	}
	l := loadLocal(t, d)
	m := l.Meta
	checkOwner(t, m, "h")
	if !l.Dirty || !m.Pending || !m.Restored || saveOf(m) != saveA || m.JournalLSN != 7 || m.SaveLSN != 0 {
		t.Errorf("after Edited on a rollback: %+v", m)
	}
	if f != (File{SHA256: l.GraphSHA256, JournalLSN: 7}) || m.GraphSHA256 != l.GraphSHA256 {
		t.Errorf("Edited returned %+v; the graph file hashes to %s", f, l.GraphSHA256)
	}
	if _, err := d.Edited(testGraph("two", 8), nil, false); err != nil {
		t.Fatal(err)
	}
	if m := loadLocal(t, d).Meta; m.SaveID != "" || m.SaveTime != nil || m.Restored || !m.Pending {
		t.Errorf("after Edited of a never-saved session: %+v", m)
	}
}

func TestSavedLeavesTheGraphFile(t *testing.T) {
	d := testDir(t)
	f, err := d.Edited(testGraph("one", 3), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	// The save holds changes up to 9; the graph file only up to 3 (the
	// journal holds the rest).
	if err := d.Saved(testGraph("one", 9), saveB, f); err != nil {
		t.Fatal(err)
	}
	l := loadLocal(t, d)
	m := l.Meta
	checkOwner(t, m, "h")
	if l.Dirty || m.Pending || m.Restored || saveOf(m) != saveB || m.SaveLSN != 9 || m.JournalLSN != 3 || m.GraphSHA256 != f.SHA256 {
		t.Errorf("after Saved: dirty %v %+v", l.Dirty, m)
	}
}

func TestLoadFile(t *testing.T) {
	d := testDir(t)
	if f, err := LoadFile(d.Path); f != nil || err != nil {
		t.Fatalf("LoadFile of a missing data dir = %+v, %v", f, err)
	}
	want, err := d.Edited(testGraph("one", 3), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := LoadFile(d.Path); err != nil || f == nil || *f != want {
		t.Fatalf("LoadFile = %+v, %v; want %+v", f, err, want)
	}
}

func TestSavedCheckpointWritesTheGraph(t *testing.T) {
	d := testDir(t)
	if _, err := d.Edited(testGraph("one", 3), &saveA, false); err != nil {
		t.Fatal(err)
	}
	f, err := d.SavedCheckpoint(testGraph("two", 9), saveB)
	if err != nil {
		t.Fatal(err)
	}
	l := loadLocal(t, d)
	m := l.Meta
	checkOwner(t, m, "h")
	if l.Dirty || m.Pending || saveOf(m) != saveB || m.SaveLSN != 9 || m.JournalLSN != 9 || string(l.Graph.Nodes[0].Data) != "two" {
		t.Errorf("after SavedCheckpoint: dirty %v %+v", l.Dirty, m)
	}
	if f != (File{SHA256: l.GraphSHA256, JournalLSN: 9}) {
		t.Errorf("SavedCheckpoint returned %+v; the graph file hashes to %s", f, l.GraphSHA256)
	}
}

func TestRestored(t *testing.T) {
	d := testDir(t)
	d.Writer = ""
	g := testGraph("old", 0)
	if _, err := d.Restored(session.Encode(g), g, saveA, "b", false); err != nil {
		t.Fatal(err)
	}
	l := loadLocal(t, d)
	m := l.Meta
	checkOwner(t, m, "")
	if l.Dirty || m.Pending || !m.Restored || m.RestoredNewest != "b" || saveOf(m) != saveA || m.NodeCount != 1 || !m.Initialized {
		t.Errorf("after Restored: dirty %v %+v", l.Dirty, m)
	}
	// Over unsaved edits, with force: they are set aside first, stamped by
	// the dir's clock.
	if _, err := d.Edited(testGraph("mine", 0), &saveA, false); err != nil {
		t.Fatal(err)
	}
	aside, err := d.Restored(session.Encode(g), g, saveA, "b", true)
	if err != nil || aside == nil || !aside.Info.SetAsideAt.Equal(testNow) || aside.Info.BaseSave != "a" || aside.Info.NewestSave != "a" {
		t.Fatalf("Restored over unsaved edits set aside %+v, %v", aside, err)
	}
}

func TestFetched(t *testing.T) {
	d := testDir(t)
	d.Writer = ""
	if _, err := d.Edited(testGraph("mine", 5), &saveA, true); err != nil {
		t.Fatal(err)
	}
	g := testGraph("newest", 0)
	if err := d.Fetched(session.Encode(g), g, saveB); err != nil {
		t.Fatal(err)
	}
	l := loadLocal(t, d)
	m := l.Meta
	checkOwner(t, m, "")
	if l.Dirty || m.Pending || m.Restored || saveOf(m) != saveB || m.JournalLSN != 0 || string(l.Graph.Nodes[0].Data) != "newest" {
		t.Errorf("after Fetched: dirty %v %+v", l.Dirty, m)
	}
}

func TestFoundAt(t *testing.T) {
	for _, holdsIt := range []bool{false, true} {
		d := testDir(t)
		g := testGraph("x", 0)
		if _, err := d.Restored(session.Encode(g), g, saveA, "", false); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Edited(testGraph("y", 4), &saveA, true); err != nil {
			t.Fatal(err)
		}
		if err := d.FoundAt(loadLocal(t, d), saveB, holdsIt); err != nil {
			t.Fatal(err)
		}
		l := loadLocal(t, d)
		m := l.Meta
		if m.Restored || saveOf(m) != saveB || m.Pending == holdsIt || l.Dirty == holdsIt || m.JournalLSN != 4 || !m.Updated.Equal(testNow) {
			t.Errorf("after FoundAt (holds it %v): dirty %v %+v", holdsIt, l.Dirty, m)
		}
	}
}

func TestAdopted(t *testing.T) {
	other := testDir(t)
	other.Session, other.Store = "other", "file:///elsewhere"
	g := testGraph("x", 0)
	if _, err := other.Restored(session.Encode(g), g, saveA, "a", false); err != nil {
		t.Fatal(err)
	}
	d := testDir(t)
	d.Path, d.Writer = other.Path, ""
	l := loadLocal(t, d)
	if err := d.Adopted(l); err != nil {
		t.Fatal(err)
	}
	m := loadLocal(t, d).Meta
	checkOwner(t, m, "h") // the writer stays the one that wrote it
	if m.SaveID != "" || m.SaveTime != nil || !m.Pending || m.Restored || m.RestoredNewest != "" {
		t.Errorf("after Adopted: %+v", m)
	}
	if !l.Dirty || l.Meta.Session != "s" || l.Meta.SaveID != "" {
		t.Errorf("Adopted left the loaded session at dirty %v %+v", l.Dirty, l.Meta)
	}
}

func TestSetAsideStampsWithTheClock(t *testing.T) {
	d := testDir(t)
	if _, err := d.Edited(testGraph("mine", 0), &saveA, false); err != nil {
		t.Fatal(err)
	}
	c, err := d.SetAside(DivergedInfo{Session: "s", BaseSave: "a", NewestSave: "b", Reason: "test"})
	if err != nil || !c.Info.SetAsideAt.Equal(testNow) {
		t.Fatalf("SetAside = %+v, %v; want stamped %s", c, err, testNow)
	}
	if has, err := HasPending(d.Path); err != nil || !has {
		t.Errorf("SetAside changed the data dir: pending %v %v", has, err)
	}
}
