package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/internal/damage"
	"github.com/pitr-dev/pitr/manifest"
)

func verifyCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = runVerify(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestVerifyCommandClean(t *testing.T) {
	url, _, saves := chunkStore(t)
	out, _, err := verifyCmd(t, "--store", url, "--session", "s")
	if err != nil || !strings.Contains(out, "session s: 2 saves") || !strings.Contains(out, "no problems found") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	out, _, err = verifyCmd(t, "--store", url, "--session", "s", "--read-data")
	if err != nil || !strings.Contains(out, "decoded 2 of 2 saves") {
		t.Fatalf("verify --read-data: %v\n%s", err, out)
	}
	out, _, err = verifyCmd(t, "--store", url, "--session", "s", "--read-data", "--save", saves[0].ID)
	if err != nil || !strings.Contains(out, "session s: 1 save,") || !strings.Contains(out, "decoded 1 of 1 save") {
		t.Fatalf("verify --save: %v\n%s", err, out)
	}
}

func TestVerifyCommandNamesEveryProblem(t *testing.T) {
	url, st, saves := chunkStore(t)
	ctx := context.Background()
	// the lamp chunk is in both saves: overwrite it with another valid chunk body
	entries, err := catalog.Entries(ctx, st, saves[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := catalog.Entries(ctx, st, saves[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	var shared manifest.Entry
	for _, e := range entries {
		for _, f := range second {
			if e.ID == f.ID {
				shared = e
			}
		}
	}
	if shared.ID.IsZero() {
		t.Fatal("fixture: the saves share no chunk")
	}
	if _, err := damage.Chunk(ctx, st, shared, damage.Garbage); err != nil {
		t.Fatal(err)
	}
	if out, _, err := verifyCmd(t, "--store", url, "--session", "s"); err != nil {
		t.Fatalf("existence check failed on a chunk that exists: %v\n%s", err, out)
	}
	out, _, err := verifyCmd(t, "--store", url, "--session", "s", "--read-data")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "2 problems in 2 of 2 saves of session s") {
		t.Fatalf("verify --read-data of a corrupt store: %v\n%s", err, out)
	}
	for _, m := range saves {
		want := "save " + m.ID + ": chunk " + shared.ID.String() + ": corrupt (in " + shared.Loc.String() + "): "
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// a manifest that does not decode is named too
	key, err := manifest.Key("s", saves[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, key, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	out, _, err = verifyCmd(t, "--store", url, "--session", "s")
	if err == nil || !strings.Contains(out, "save "+saves[1].ID+": manifest unreadable: ") {
		t.Fatalf("verify with a bad manifest: %v\n%s", err, out)
	}
}

func TestVerifyCommandSubset(t *testing.T) {
	url, _, _ := chunkStore(t)
	out, _, err := verifyCmd(t, "--store", url, "--session", "s", "--read-data-subset", "100%", "--seed", "7")
	if err != nil || !regexp.MustCompile(`read (\d+) of (\d+) data chunks \(100%`).MatchString(out) || !strings.Contains(out, "--seed 7") {
		t.Fatalf("subset 100%%: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`read (\d+) of (\d+) `).FindStringSubmatch(out); m[1] != m[2] {
		t.Errorf("100%% read %s of %s chunks", m[1], m[2])
	}
	out, _, err = verifyCmd(t, "--store", url, "--session", "s", "--read-data-subset", "0")
	if err != nil || !strings.Contains(out, "read 0 of ") || !regexp.MustCompile(`--seed -?\d+\)`).MatchString(out) {
		t.Fatalf("subset 0%% without a seed: %v\n%s", err, out)
	}
}

func TestVerifyUsageErrors(t *testing.T) {
	url, _, _ := chunkStore(t)
	for _, args := range [][]string{
		{"--read-data", "--read-data-subset", "5%"},
		{"--read-data-subset", "150%"},
		{"--read-data-subset", "some"},
		{"--seed", "5"},
		{"--read-data-subset", "5%", "--seed", "x"},
		{"--session", "bad/name"},
	} {
		_, _, err := verifyCmd(t, append([]string{"--store", url, "--session", "s"}, args...)...)
		if exitCode(err) != 2 {
			t.Errorf("verify %v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
	_, _, err := verifyCmd(t, "--store", url, "--session", "s", "--save", manifest.NewID(time.Now()))
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "not found") {
		t.Errorf("verify --save of an absent save: %v", err)
	}
	_, _, err = verifyCmd(t, "--store", url, "--session", "nobody")
	if err == nil || exitCode(err) != 1 {
		t.Errorf("verify of a session without saves: %v", err)
	}
}
