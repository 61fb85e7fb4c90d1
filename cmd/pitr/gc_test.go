package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store/file"
)

// chunkStore returns a file store URL with two real saves of session "s",
// every chunk two hours old, and the saves, oldest first.
func chunkStore(t *testing.T) (url string, st *file.Store, saves []*manifest.Manifest) {
	t.Helper()
	url, st, saves = savedFileStore(t, 2, func(s *session.Session, i int) time.Time {
		data := []string{"first version ", "second version "}[i]
		putNode(t, s, "cube", strings.Repeat(data+"cube", 300))
		if i == 0 { // lamp stays the same: its chunk is shared
			putNode(t, s, "lamp", strings.Repeat(data+"lamp", 300))
		}
		return time.Now()
	})
	ageAll(t, st.Root(), time.Now().Add(-2*time.Hour))
	return url, st, saves
}

func ageAll(t *testing.T, root string, mtime time.Time) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "chunks"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(root, "chunks", e.Name())
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// orphan stores an unreferenced chunk with the given age and returns its key.
func orphan(t *testing.T, st *file.Store, data string, age time.Duration) string {
	t.Helper()
	body, err := chunker.Compress([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	key := chunker.ObjectKey(chunker.Sum([]byte(data)))
	if err := st.Put(context.Background(), key, body); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-age)
	if err := os.Chtimes(filepath.Join(st.Root(), filepath.FromSlash(key)), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return key
}

func has(t *testing.T, st *file.Store, key string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(st.Root(), filepath.FromSlash(key)))
	return err == nil
}

func gcCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runGC(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestGCCommand(t *testing.T) {
	url, st, _ := chunkStore(t)
	old := orphan(t, st, "left by a pruned save", 3*time.Hour)
	young := orphan(t, st, "uploaded by a save in flight", time.Minute)

	out, errOut, err := gcCmd(t, "--store", url, "--dry-run")
	if err != nil || errOut != "" {
		t.Fatalf("gc --dry-run: %v %q", err, errOut)
	}
	for _, want := range []string{"2 saves in 1 session reference", "would delete 1 unreferenced chunk older than 1h0m0s",
		"(dry run: nothing deleted)", "kept 1 unreferenced chunk not older than 1h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`2 saves in 1 session reference [1-9]\d* packs?\n`).MatchString(out) {
		t.Errorf("dry run output does not count the packs the saves reference:\n%s", out)
	}
	if !has(t, st, old) {
		t.Fatal("dry run deleted a chunk")
	}

	out, _, err = gcCmd(t, "--store", url)
	if err != nil || !strings.Contains(out, "deleted 1 unreferenced chunk older than 1h0m0s, freed ") {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if has(t, st, old) || !has(t, st, young) {
		t.Fatalf("after gc: old orphan present %v, young orphan present %v", has(t, st, old), has(t, st, young))
	}
	if out, _, err := verifyCmd(t, "--store", url, "--session", "s", "--read-data"); err != nil {
		t.Fatalf("verify after gc: %v\n%s", err, out)
	}

	// --grace from the environment; below the default, a warning
	t.Setenv("PITR_GRACE", "0s")
	out, errOut, err = gcCmd(t, "--store", url)
	if err != nil || !strings.Contains(out, "deleted 1 unreferenced chunk older than 0s") || has(t, st, young) {
		t.Fatalf("PITR_GRACE=0s: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, "warning: --grace 0s is shorter than the 1h0m0s servers assume") {
		t.Errorf("no warning for a short grace: %q", errOut)
	}
}

func TestGCAbortsOnUnreadableManifest(t *testing.T) {
	url, st, _ := chunkStore(t)
	old := orphan(t, st, "left by a pruned save", 3*time.Hour)
	key, err := manifest.Key("other", manifest.NewID(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(context.Background(), key, []byte("{")); err != nil {
		t.Fatal(err)
	}
	_, _, err = gcCmd(t, "--store", url)
	if err == nil || !strings.Contains(err.Error(), "nothing deleted") || !strings.Contains(err.Error(), key) || exitCode(err) != 1 {
		t.Fatalf("gc with a bad manifest: %v", err)
	}
	if !has(t, st, old) {
		t.Fatal("aborted gc deleted a chunk")
	}
}

func TestGCUsageErrors(t *testing.T) {
	url, _, _ := chunkStore(t)
	for _, args := range [][]string{{"--grace", "-1s"}, {"--grace", "soon"}, {"extra"}} {
		_, _, err := gcCmd(t, append([]string{"--store", url}, args...)...)
		if exitCode(err) != 2 {
			t.Errorf("gc %v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}
