package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/file"
)

// pruneStore returns a file store URL holding n saves of session "s", an
// hour apart and ending 2025-01-12 15:00 UTC, and their ids, oldest first.
// Their manifests have empty chunk lists: prune reads keys only.
func pruneStore(t *testing.T, n int) (url string, st store.Store, ids []string) {
	t.Helper()
	dir := t.TempDir()
	fst, err := file.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	for i := range n {
		at := end.Add(-time.Duration(n-1-i) * time.Hour)
		m := &manifest.Manifest{
			FormatVersion: manifest.FormatList, Session: "s", ID: manifest.NewID(at), Time: at,
			Reason: "interval", ChunkList: manifest.ChunkList{Format: manifest.ListFormat},
		}
		if err := catalog.Put(context.Background(), fst, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return "file://" + dir, fst, ids
}

func leftIDs(t *testing.T, st store.Store) []string {
	t.Helper()
	refs, err := catalog.Refs(context.Background(), st, "s")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range refs {
		ids = append(ids, r.ID)
	}
	return ids
}

func prune(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runPrune(context.Background(), args, &out, io.Discard)
	return out.String(), err
}

func TestPruneDryRun(t *testing.T) {
	url, st, ids := pruneStore(t, 6)
	out, err := prune(t, "--store", url, "--session", "s", "--keep-last", "2", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"policy --keep-last 2",
		ids[0] + "  2025-01-12T10:00:00.000Z  would remove  -",
		ids[4] + "  2025-01-12T14:00:00.000Z  keep          last 2\n",
		ids[5] + "  2025-01-12T15:00:00.000Z  keep          last 2, newest\n",
		"kept 2, would remove 4 (dry run: nothing deleted)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := leftIDs(t, st); !slices.Equal(got, ids) {
		t.Fatalf("dry run deleted saves: left %v", got)
	}
}

func TestPruneCommand(t *testing.T) {
	url, st, ids := pruneStore(t, 6)
	out, err := prune(t, "--store", url, "--session", "s", "--keep-within", "90m")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		ids[0] + "  2025-01-12T10:00:00.000Z  remove  -",
		ids[5] + "  2025-01-12T15:00:00.000Z  keep    within 1h30m, newest\n",
		"kept 2, removed 4\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := leftIDs(t, st); !slices.Equal(got, ids[4:]) {
		t.Fatalf("left %v, want %v", got, ids[4:])
	}
	// Days are accepted; nothing more to remove.
	out, err = prune(t, "--store", url, "--session", "s", "--keep-daily", "1", "--keep-within", "7d")
	if err != nil || !strings.Contains(out, "kept 2, removed 0\n") {
		t.Fatalf("second prune: %v\n%s", err, out)
	}
}

func TestPruneFromEnv(t *testing.T) {
	url, st, ids := pruneStore(t, 3)
	t.Setenv("PITR_KEEP_LAST", "1")
	t.Setenv("PITR_STORE", url)
	t.Setenv("PITR_SESSION", "s")
	if _, err := prune(t); err != nil {
		t.Fatal(err)
	}
	if got := leftIDs(t, st); !slices.Equal(got, ids[2:]) {
		t.Fatalf("left %v", got)
	}
}

func TestPruneUsageErrors(t *testing.T) {
	url, st, ids := pruneStore(t, 3)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no retention rule given"},
		{[]string{"--keep-last", "0"}, "no retention rule given"},
		{[]string{"--keep-within", "7x"}, "invalid duration"},
		{[]string{"--keep-within", "-1h"}, "negative"},
		{[]string{"--keep-daily", "-3"}, "negative"},
		{[]string{"--keep-last", "1", "extra"}, "unexpected argument"},
	} {
		_, err := prune(t, append([]string{"--store", url, "--session", "s"}, c.args...)...)
		var u usageError
		if !errors.As(err, &u) || exitCode(err) != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("prune %q: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
	if got := leftIDs(t, st); !slices.Equal(got, ids) {
		t.Fatalf("a refused prune deleted saves: left %v", got)
	}
}

func TestPruneNoSaves(t *testing.T) {
	out, err := prune(t, "--store", "file://"+t.TempDir(), "--session", "s", "--keep-last", "1")
	if err != nil || !strings.Contains(out, "no saves\n") {
		t.Fatalf("prune of an empty session: %v\n%s", err, out)
	}
}
