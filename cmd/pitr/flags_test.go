package main

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
)

// Every duration and number flag rejects negative and malformed values
// with one error naming the flag (or variable), the value and a valid
// example; nothing runs.
func TestBadFlagValues(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"serve", "--shutdown-timeout", "-1s"}, nil, []string{"--shutdown-timeout", "negative"}},
		{[]string{"serve", "--save-interval", "5"}, nil, []string{"save-interval", `"5"`, "30s"}},
		{[]string{"serve"}, map[string]string{"PITR_SAVE_INTERVAL": "5"}, []string{"PITR_SAVE_INTERVAL", `"5"`, "30s"}},
		{[]string{"serve", "--max-node-bytes", "-3"}, nil, []string{"--max-node-bytes", "negative"}},
		{[]string{"serve", "--max-node-bytes", "lots"}, nil, []string{"max-node-bytes", `"lots"`, "whole number"}},
		{[]string{"serve", "--prune-interval", "-10m"}, nil, []string{"--prune-interval", "negative"}},
		{[]string{"gc", "--grace", "-1h"}, nil, []string{"--grace", "negative"}},
		{[]string{"restore", "--at", "latest", "--force=maybe"}, nil, []string{"force", `"maybe"`, "true or false"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Chdir(dir)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || exitCode(err) != 2 {
				t.Fatalf("err %v (exit %d), want a usage error", err, exitCode(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// pitr version and --version on any command print the version line.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"saves", "--version"}, {"--version"}} {
		var out strings.Builder
		if err := run(context.Background(), args, &out, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "pitr ") || !strings.Contains(out.String(), runtime.Version()) {
			t.Fatalf("%v printed %q, want pitr's version and %s", args, out.String(), runtime.Version())
		}
	}
}

func TestPercentFlag(t *testing.T) {
	for in, want := range map[string]float64{"20%": 0.2, "100": 1, " 5.5% ": 0.055} {
		var p percentFlag
		if err := p.Set(in); err != nil || p.v != want {
			t.Errorf("Set(%q) = %v, %v; want %v", in, p.v, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "101%", "x", ""} {
		var p percentFlag
		if err := p.Set(in); err == nil {
			t.Errorf("Set(%q) accepted: %v", in, p.v)
		}
	}
	if got := (&percentFlag{v: 0.2}).String(); got != "20%" {
		t.Errorf("String = %q", got)
	}
}
