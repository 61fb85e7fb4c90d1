package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/client"
)

// TestShowDiffRevert: one node as of an earlier save (pitr show), what
// changed between two saves (pitr diff), and one node brought back into the
// live session as a new edit (pitr revert), saved like any edit.
func TestShowDiffRevert(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	oldA := randBytes(300_000, 1) // large: cut inside, across chunks
	s.put(t, "a", client.NodeInput{Type: "mesh", Data: oldA})
	s.put(t, "b", client.NodeInput{Type: "object", Data: []byte("b1")})
	for _, id := range []string{"k1", "k2", "k3"} {
		s.put(t, id, client.NodeInput{Type: "object", Data: []byte(id)})
	}
	s1 := s.saveNow(t)
	s.put(t, "a", client.NodeInput{Type: "mesh", Data: randBytes(300_000, 2)})
	s.deleteNode(t, "b")
	s.put(t, "c", client.NodeInput{Type: "light", Data: []byte("c1")})
	s2 := s.saveNow(t)

	// show: the node as it was, its data to a file.
	out := filepath.Join(t.TempDir(), "a.bin")
	r := st.mustPitr(t, "show", "--at", s1.ID, "--data-out", out, "--json", "a")
	var shown struct {
		Save struct{ ID string } `json:"save"`
		Node struct {
			ID, Type string
			Size     int
		} `json:"node"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.Save.ID != s1.ID || shown.Node.Size != len(oldA) || shown.Node.Type != "mesh" {
		t.Fatalf("pitr show --json: %v %+v\n%s", err, shown, r.stdout)
	}
	if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, oldA) {
		t.Fatalf("pitr show --data-out wrote %d bytes (%v), want the node's %d", len(got), err, len(oldA))
	}
	if r := st.pitr(t, "show", "--at", s1.ID, "c"); r.code == 0 || !strings.Contains(r.stderr, "no such node") {
		t.Errorf("show of a node the save lacks: exit %d, %q", r.code, r.stderr)
	}

	// diff: a changed, b removed, c added; k1..k3 untouched.
	r = st.mustPitr(t, "diff", "--json", s1.ID, "latest")
	var d struct {
		Changes []struct{ Change, ID string } `json:"changes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range d.Changes {
		got[c.ID] = c.Change
	}
	if len(got) != 3 || got["a"] != "changed" || got["b"] != "removed" || got["c"] != "added" {
		t.Errorf("pitr diff %s latest: %v", s1.ID, got)
	}

	// revert: a dry run changes nothing; then a, b and c as they were.
	revert := func(args ...string) result {
		return runPitr(t, nil, nil, append([]string{"revert", "--server", s.url, "--password", adminPW}, args...)...)
	}
	if r := revert("--dry-run", "--save", s1.ID, "a"); r.code != 0 || !strings.Contains(r.stdout, "would be put back") {
		t.Fatalf("revert --dry-run: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if now := s.getNode(t, "a"); bytes.Equal(now.Data, oldA) {
		t.Fatal("a dry run reverted the node")
	}
	for _, id := range []string{"a", "b", "c"} {
		if r := revert("--at", s1.Time.UTC().Format("2006-01-02T15:04:05.000Z"), id); r.code != 0 {
			t.Fatalf("revert %s: exit %d: %s%s", id, r.code, r.stdout, r.stderr)
		}
	}
	if now := s.getNode(t, "a"); !bytes.Equal(now.Data, oldA) || now.Version <= 1 {
		t.Errorf("after revert, node a: version %d, %d bytes; want the old data as a new version", now.Version, len(now.Data))
	}
	if b := s.getNode(t, "b"); string(b.Data) != "b1" {
		t.Errorf("reverted deleted node b: %q", b.Data)
	}
	_, _, err := s.anon(t).GetNode(t.Context(), "c")
	if code, _ := answer(t, err); code != 404 {
		t.Errorf("node c, added after the save, after its revert: status %d, want 404", code)
	}
	// The reverts are edits like any other: the next save holds them.
	s3 := s.saveNow(t)
	r = st.mustPitr(t, "diff", "--json", s2.ID, s3.ID)
	d.Changes = nil
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || len(d.Changes) != 3 {
		t.Errorf("diff of the save before and after the reverts: %v %+v", err, d.Changes)
	}
}
