package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/internal/miniotest"
)

// readOnlyCommands are the commands that must never create a store, with
// the arguments each needs besides the store.
var readOnlyCommands = [][]string{
	{"saves"}, {"sessions"}, {"verify"}, {"restore", "--at", "latest"}, {"gc"}, {"prune", "--keep-last", "1"},
}

// requireOneLineFailure fails t unless r is a failure whose stderr is one
// line naming every one of names.
func requireOneLineFailure(t testing.TB, what string, r result, names ...string) {
	t.Helper()
	msg := strings.TrimSpace(r.stderr)
	if r.code == 0 || msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: exit %d, stderr %q; want a failure with one line", what, r.code, r.stderr)
	}
	for _, n := range names {
		if !strings.Contains(msg, n) {
			t.Errorf("%s: stderr %q does not name %s", what, msg, n)
		}
	}
}

// requireEmptyDir fails t unless dir is empty.
func requireEmptyDir(t testing.TB, what, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("%s created %v in its working directory %s (%v)", what, ents, dir, err)
	}
}

// TestReadOnlyMissingFileStore runs every read-only command from an empty
// working directory with no PITR_* environment against a file:// store that
// does not exist, named and by default: each fails with one line naming the
// directory and creates nothing, neither the store nor ./pitr-data.
func TestReadOnlyMissingFileStore(t *testing.T) {
	t.Parallel()
	wd := t.TempDir()
	parent := filepath.Join(t.TempDir(), "gone")
	missing := filepath.Join(parent, "store")
	for _, c := range readOnlyCommands {
		what := "pitr " + strings.Join(c, " ")
		r := runPitrIn(t, wd, nil, nil, append(c, "--store", "file://"+missing)...)
		requireOneLineFailure(t, what+" --store file://"+missing, r, missing)
		r = runPitrIn(t, wd, nil, nil, c...)
		requireOneLineFailure(t, what+" on the default store", r, "pitr-data/store")
		requireEmptyDir(t, what, wd)
	}
	if _, err := os.Stat(parent); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only commands created %s: %v", parent, err)
	}
}

// TestReadOnlyMissingBucket runs every read-only command against a MinIO
// bucket that was never created, as a minio:// and as an s3:// store: each
// fails with one line naming the bucket, and the bucket still does not
// exist.
func TestReadOnlyMissingBucket(t *testing.T) {
	t.Parallel()
	srv := sharedMinio(t)
	bucket := miniotest.Bucket(t)
	wd := t.TempDir()
	for _, st := range []*store{minioStore(srv, bucket, ""), s3Store(srv, bucket)} {
		for _, c := range readOnlyCommands {
			what := "pitr " + strings.Join(c, " ") + " " + st.url
			r := runPitrIn(t, wd, []string{st.secret}, st.env, append(append([]string{c[0]}, st.args...), c[1:]...)...)
			requireOneLineFailure(t, what, r, bucket)
			requireEmptyDir(t, what, wd)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exists, err := minioClient(t, minioStore(srv, bucket, "")).BucketExists(ctx, bucket)
	if err != nil || exists {
		t.Errorf("bucket %s after the read-only commands: exists %v (%v), want absent", bucket, exists, err)
	}
}

// TestRestoreByIDAndPastedTime restores saves by id (--at ID and --save
// ID), checks the errors of a missing id and of both flags, and restores a
// time copied from the `pitr saves` table with TZ=Europe/Berlin: the same
// save, since the table prints RFC 3339 in UTC.
func TestRestoreByIDAndPastedTime(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startServer(t, st, serveOpts{})
	s.initSession(t)
	s.put(t, "n", client.NodeInput{Type: "object", Data: []byte("a")})
	a := s.saveNow(t)
	s.put(t, "n", client.NodeInput{Type: "object", Data: []byte("b")})
	b := s.saveNow(t)
	s.stop(t)

	restoreTo := func(env []string, args ...string) (result, string) {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		full := append(append([]string{"restore"}, st.args...), append(args, "--data-dir", dir)...)
		return runPitr(t, []string{st.secret}, append(append([]string{}, st.env...), env...), full...), dir
	}
	requireRestored := func(what string, r result, dir, id string) {
		t.Helper()
		if r.code != 0 {
			t.Errorf("%s: exit %d: %s", what, r.code, r.stderr)
			return
		}
		if sj := readSessionJSON(t, dir); sj.SaveID != id || !strings.Contains(r.stdout, "save "+id+" taken ") {
			t.Errorf("%s restored save %s, want %s; stdout:\n%s", what, sj.SaveID, id, r.stdout)
		}
	}
	for _, flag := range []string{"--at", "--save"} {
		r, dir := restoreTo(nil, flag, a.ID)
		requireRestored("restore "+flag+" "+a.ID, r, dir, a.ID)
	}

	r, _ := restoreTo(nil, "--at", "latest", "--save", a.ID)
	if r.code != 2 || !strings.Contains(r.stderr, "--at") || !strings.Contains(r.stderr, "--save") {
		t.Errorf("restore with --at and --save: exit %d, stderr %q; want a usage error naming both", r.code, r.stderr)
	}
	absent := "20200101T000000.000Z-abcdef"
	for _, flag := range []string{"--at", "--save"} {
		r, dir := restoreTo(nil, flag, absent)
		requireOneLineFailure(t, "restore "+flag+" of a save that does not exist", r, absent, "default")
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("failed restore %s %s created %s", flag, absent, dir)
		}
	}

	table := st.mustPitr(t, "saves").stdout
	for _, want := range []client.SaveResult{a, b} {
		pasted := savesTableTime(t, table, want.ID)
		if !pasted.Equal(want.Time.Truncate(time.Millisecond)) {
			t.Errorf("pitr saves prints %s at %s, the save was taken at %s", want.ID, pasted.Format(time.RFC3339Nano), want.Time.Format(time.RFC3339Nano))
		}
		at := savesTableField(t, table, want.ID)
		r, dir := restoreTo([]string{"TZ=Europe/Berlin"}, "--at", at)
		requireRestored("TZ=Europe/Berlin restore --at "+at+" (copied from pitr saves)", r, dir, want.ID)
	}
}

// savesTableField is the TIME column of save id's row of the `pitr saves`
// table.
func savesTableField(t testing.TB, table, id string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == id {
			return f[1]
		}
	}
	t.Fatalf("pitr saves does not list %s:\n%s", id, table)
	return ""
}

// savesTableTime parses the TIME column of save id's row, requiring RFC 3339
// with a zone.
func savesTableTime(t testing.TB, table, id string) time.Time {
	t.Helper()
	s := savesTableField(t, table, id)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Fatalf("pitr saves prints the time of %s as %q: want RFC 3339 in UTC (%v)", id, s, err)
	}
	return tm
}
