package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

// savesAt returns a file store URL holding one real save of session "s" at
// each of times, and the saves, oldest first.
func savesAt(t *testing.T, times ...time.Time) (url string, st *file.Store, saves []*manifest.Manifest) {
	t.Helper()
	return savedFileStore(t, len(times), func(s *session.Session, i int) time.Time {
		putNode(t, s, "cube", strings.Repeat("v", i+1))
		return times[i]
	})
}

// cmdOut runs one command in process and returns its stdout and stderr.
func cmdOut(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// threeSaves are save times an hour apart, with milliseconds: reading a
// printed time in the wrong zone would pick a neighbour or none.
func threeSaves(t *testing.T) (string, *file.Store, []*manifest.Manifest) {
	t.Helper()
	t0 := time.Date(2025, 1, 12, 15, 34, 45, 123e6, time.UTC)
	return savesAt(t, t0.Add(-time.Hour), t0, t0.Add(time.Hour))
}

// TestSavesTimeSelectsSameSave reads every time `pitr saves` prints back
// with manifest.ParseAt in a zone east of UTC (as a user in Berlin pasting
// it into --at would) and checks that it selects the save of that row.
func TestSavesTimeSelectsSameSave(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	url, st, saves := threeSaves(t)
	out, _, err := cmdOut(t, "saves", "--store", url, "--session", "s")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")[1:]
	if len(rows) != len(saves) {
		t.Fatalf("pitr saves printed %d rows, want %d:\n%s", len(rows), len(saves), out)
	}
	for i, row := range rows {
		f := strings.Fields(row)
		id, printed := f[0], f[1]
		if id != saves[i].ID || printed != manifest.FormatTime(saves[i].Time) || !strings.HasSuffix(printed, "Z") {
			t.Errorf("row %q: want save %s at %s", row, saves[i].ID, manifest.FormatTime(saves[i].Time))
		}
		at, latest, err := manifest.ParseAt(printed, berlin)
		if err != nil || latest {
			t.Fatalf("ParseAt(%q) in Europe/Berlin: %v", printed, err)
		}
		m, err := restore.Choose(context.Background(), st, "s", at, false)
		if err != nil || m.ID != id {
			t.Errorf("the time %s that pitr saves printed for %s, read in Europe/Berlin, selects %v (%v)", printed, id, m, err)
		}
	}
	out, _, err = cmdOut(t, "sessions", "--store", url)
	if err != nil || !strings.Contains(strings.Join(strings.Fields(out), " "), "s "+saves[2].ID+" "+manifest.FormatTime(saves[2].Time)+" ") {
		t.Errorf("pitr sessions: %v\n%s\nwant session s with its newest save %s at %s", err, out, saves[2].ID, manifest.FormatTime(saves[2].Time))
	}
}

// TestRestoreByID restores a save by id, with --at and with --save, and a
// time pitr printed pasted into --at.
func TestRestoreByID(t *testing.T) {
	url, _, saves := threeSaves(t)
	mid := saves[1]
	for _, args := range [][]string{{"--at", mid.ID}, {"--save", mid.ID}, {"--at", manifest.FormatTime(mid.Time)}} {
		dir := filepath.Join(t.TempDir(), "data")
		out, _, err := cmdOut(t, append([]string{"restore", "--store", url, "--session", "s", "--data-dir", dir}, args...)...)
		if err != nil {
			t.Errorf("restore %q: %v", args, err)
			continue
		}
		want := "save " + mid.ID + " taken " + manifest.FormatTime(mid.Time) + " ("
		if !strings.HasPrefix(out, want) {
			t.Errorf("restore %q printed:\n%s\nwant it to start with %q", args, out, want)
		}
	}
}

// TestRestoreTargetErrors checks the usage errors of --at and --save and
// that an absent save id fails with one line naming it and the session,
// creating no data dir.
func TestRestoreTargetErrors(t *testing.T) {
	url, _, saves := threeSaves(t)
	dir := filepath.Join(t.TempDir(), "data")
	base := []string{"restore", "--store", url, "--session", "s", "--data-dir", dir}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--save"},
		{[]string{"--at", "latest", "--save", saves[0].ID}, "exclude each other"},
		{[]string{"--save", "latest"}, "invalid save id"},
		{[]string{"--save", "2025-01-12T15:34:45Z"}, "--save"},
		{[]string{"--at", "20250112T153445.123Z-zzzzzz"}, "save id"},
	} {
		_, _, err := cmdOut(t, append(base, c.args...)...)
		if exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("restore %q: %v (exit %d), want a usage error with %q", c.args, err, exitCode(err), c.want)
		}
	}
	absent := manifest.NewID(saves[1].Time.Add(time.Minute))
	for _, flag := range []string{"--at", "--save"} {
		_, _, err := cmdOut(t, append(base, flag, absent)...)
		if !errors.Is(err, manifest.ErrNoSuchSave) || exitCode(err) != 1 || !strings.Contains(err.Error(), absent) ||
			!strings.Contains(err.Error(), "session s") || strings.Contains(err.Error(), "\n") {
			t.Errorf("restore %s %s, no such save: %v, want one line naming the id and session s", flag, absent, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed restores left %s: %v", dir, err)
	}
}

// TestReadOnlyCommandsCreateNothing runs every command but serve against a
// file store that does not exist, given and by default: each fails naming
// it and creates nothing.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	missing := filepath.Join(t.TempDir(), "no", "store")
	for _, cmd := range [][]string{
		{"saves"}, {"sessions"}, {"verify"}, {"restore", "--at", "latest"}, {"gc"}, {"prune", "--keep-last", "1"},
	} {
		for _, st := range []struct {
			args []string
			path string
		}{
			{[]string{"--store", "file://" + missing}, missing},
			{nil, "pitr-data/store"},
		} {
			_, _, err := cmdOut(t, append(cmd, st.args...)...)
			if !errors.Is(err, store.ErrNoStore) || !strings.Contains(err.Error(), st.path) {
				t.Errorf("pitr %s %s: %v, want an error naming %s as missing", cmd[0], strings.Join(st.args, " "), err, st.path)
			}
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a read-only command created %s: %v", filepath.Dir(missing), err)
	}
	if ents, err := os.ReadDir(wd); err != nil || len(ents) != 0 {
		t.Errorf("read-only commands created %v in the working directory (%v)", ents, err)
	}
}
