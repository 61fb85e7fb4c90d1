package datadir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A forced install keeps the admin password and the set-aside copies, and
// sets a session with unsaved edits aside before replacing it; a clean
// session is replaced without a copy.
func TestInstallKeepsEntriesAndUnsavedEdits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sess")
	pw, created, err := AdminPassword(dir)
	if err != nil || !created {
		t.Fatalf("AdminPassword: %v %v", created, err)
	}
	// Only kept entries: the dir counts as empty.
	if _, err := dirAt(dir).install(graphBytes(t, "one"), Meta{Session: "s", SaveID: "a"}, false); err != nil {
		t.Fatalf("install next to the admin password: %v", err)
	}
	if d, err := dirAt(dir).install(graphBytes(t, "two"), Meta{Session: "s", SaveID: "b"}, true); err != nil || d != nil {
		t.Fatalf("forced install over a clean session: set aside %v, %v; want nothing set aside", d, err)
	}
	// Unsaved edits: graph.pitrg replaced after session.json.
	if err := os.WriteFile(filepath.Join(dir, GraphFile), graphBytes(t, "edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := dirAt(dir).install(graphBytes(t, "three"), Meta{Session: "s", SaveID: "c"}, true)
	if err != nil || d == nil || d.Info.BaseSave != "b" || d.Info.NewestSave != "c" {
		t.Fatalf("forced install over unsaved edits: %+v, %v; want them set aside on base b", d, err)
	}
	_, local, err := LoadDiverged(dir, d.Name)
	if err != nil || string(local.Graph.Nodes[0].Data) != "edited" {
		t.Fatalf("set-aside copy: %v", err)
	}
	if l, err := Load(dir); err != nil || l.Meta.SaveID != "c" || l.Dirty {
		t.Fatalf("installed session: %+v %v", l, err)
	}
	if again, _, err := AdminPassword(dir); err != nil || again != pw {
		t.Fatalf("admin password after two forced installs: %q %v, want the first one", again, err)
	}
	// A second install keeps the copy made by the first.
	if _, err := dirAt(dir).install(graphBytes(t, "four"), Meta{Session: "s", SaveID: "d"}, true); err != nil {
		t.Fatal(err)
	}
	if copies, err := ListDiverged(dir); err != nil || len(copies) != 1 {
		t.Fatalf("copies after another install: %d %v, want 1", len(copies), err)
	}
}

// SetAside of the same graph on the same base reuses the first copy.
func TestSetAsideOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sess")
	if err := dirAt(dir).write(graphBytes(t, "x"), Meta{Session: "s", SaveID: "a", Pending: true}); err != nil {
		t.Fatal(err)
	}
	info := DivergedInfo{Session: "s", BaseSave: "a", NewestSave: "b", SetAsideAt: time.Now()}
	first, err := dirAt(dir).SetAside(info)
	if err != nil {
		t.Fatal(err)
	}
	info.SetAsideAt = info.SetAsideAt.Add(time.Minute)
	second, err := dirAt(dir).SetAside(info)
	if err != nil || second.Name != first.Name {
		t.Fatalf("second SetAside: %v %v, want %s again", second, err, first.Name)
	}
	if _, _, err := LoadDiverged(dir, "../sess"); err == nil {
		t.Fatal("LoadDiverged accepted a path outside diverged/")
	}
	if err := DropDiverged(dir, "../sess"); err == nil {
		t.Fatal("DropDiverged accepted a path outside diverged/")
	}
	if err := DropDiverged(dir, first.Name); err != nil {
		t.Fatal(err)
	}
	if copies, _ := ListDiverged(dir); len(copies) != 0 {
		t.Fatalf("%d copies after DropDiverged", len(copies))
	}
	if _, err := os.Stat(filepath.Join(dir, GraphFile)); err != nil {
		t.Fatalf("DropDiverged touched the session: %v", err)
	}
}
