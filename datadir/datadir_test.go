package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pitr-dev/pitr/session"
)

func graphBytes(t *testing.T, data string) []byte {
	t.Helper()
	return session.Encode(&session.Graph{Initialized: true, Nodes: []*session.Node{
		{ID: "a", Type: "t", Owner: session.Common, Deps: []string{}, Data: []byte(data), Version: 1},
	}})
}

func TestWriteLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sess")
	if has, err := HasSession(dir); has || err != nil {
		t.Fatalf("missing dir: %v %v", has, err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrNoSession) {
		t.Fatalf("load missing: %v", err)
	}
	if err := dirAt(dir).write(graphBytes(t, "one"), Meta{Session: "s", SaveID: "id1"}); err != nil {
		t.Fatal(err)
	}
	l, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if l.Dirty || l.Meta.SaveID != "id1" || l.Meta.NodeCount != 1 || !l.Meta.Initialized || string(l.Graph.Nodes[0].Data) != "one" {
		t.Fatalf("loaded %+v dirty=%v", l.Meta, l.Dirty)
	}
	// a graph written after session.json (crash between the two renames) is dirty
	if err := writeAtomic(dir, GraphFile, graphBytes(t, "two")); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(dir); err != nil || !l.Dirty {
		t.Fatalf("graph newer than meta: dirty=%v err=%v", l != nil && l.Dirty, err)
	}
	if err := dirAt(dir).write(graphBytes(t, "three"), Meta{Session: "s", Pending: true}); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(dir); err != nil || !l.Dirty {
		t.Fatalf("pending meta: dirty=%v err=%v", l != nil && l.Dirty, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temp files left: %v", entries)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	b := graphBytes(t, "x")
	if err := dirAt(dir).write(b[:len(b)-3], Meta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, session.ErrCorrupt) {
		t.Fatalf("corrupt graph: %v", err)
	}
}

func TestInstall(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sess")
	if _, err := dirAt(dir).install(graphBytes(t, "one"), Meta{SaveID: "a"}, false); err != nil {
		t.Fatal(err)
	}
	_, err := dirAt(dir).install(graphBytes(t, "two"), Meta{SaveID: "b"}, false)
	if !errors.Is(err, ErrExists) {
		t.Fatalf("install over a session without force: %v", err)
	}
	if l, _ := Load(dir); l.Meta.SaveID != "a" {
		t.Fatalf("refused install changed the dir: %+v", l.Meta)
	}
	if _, err := dirAt(dir).install(graphBytes(t, "two"), Meta{SaveID: "b"}, true); err != nil {
		t.Fatal(err)
	}
	if l, _ := Load(dir); l.Meta.SaveID != "b" || string(l.Graph.Nodes[0].Data) != "two" {
		t.Fatalf("forced install: %+v", l.Meta)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("leftovers next to the data dir: %v", entries)
	}
	// an empty directory is fine; a directory with other files is not
	empty := filepath.Join(root, "empty")
	_ = os.Mkdir(empty, 0o755)
	if _, err := dirAt(empty).install(graphBytes(t, "x"), Meta{}, false); err != nil {
		t.Fatalf("install into empty dir: %v", err)
	}
	other := filepath.Join(root, "other")
	_ = os.Mkdir(other, 0o755)
	_ = os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o644)
	if _, err := dirAt(other).install(graphBytes(t, "x"), Meta{}, false); !errors.Is(err, ErrExists) {
		t.Fatalf("install over other files: %v", err)
	}
}

func TestLoadRejectsBadMeta(t *testing.T) {
	for name, meta := range map[string]string{
		"not json":   "session",
		"truncated":  `{"session": "s", "save_id"`,
		"wrong type": `{"session": 3}`,
		"array":      `[]`,
	} {
		dir := t.TempDir()
		if err := dirAt(dir).write(graphBytes(t, "x"), Meta{Session: "s"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, MetaFile), []byte(meta), 0o644); err != nil {
			t.Fatal(err)
		}
		if l, err := Load(dir); err == nil {
			t.Errorf("%s: loaded %+v, want an error", name, l.Meta)
		}
	}
}

func FuzzLoadMeta(f *testing.F) {
	f.Add([]byte(`{"session": "s", "save_id": "x", "pending": true}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, meta []byte) {
		dir := t.TempDir()
		graph := graphBytes(t, "x")
		if err := dirAt(dir).write(graph, Meta{Session: "s"}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, MetaFile), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Load(dir)
		if err != nil {
			return
		}
		// whatever session.json says, the counts come from the graph and a
		// hash that does not match marks the copy dirty
		if l.Meta.NodeCount != 1 || !l.Meta.Initialized || (l.Meta.GraphSHA256 != hashHex(graph) && !l.Dirty) {
			t.Fatalf("loaded %+v dirty=%v", l.Meta, l.Dirty)
		}
	})
}

// dirAt is the data dir at path, on the wall clock.
func dirAt(path string) Dir { return Dir{Path: path} }
