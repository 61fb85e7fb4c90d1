package bench

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMainCommandLine: Main refuses a bad command line with exit code 2
// and a message, before starting anything, and --help exits 0.
func TestMainCommandLine(t *testing.T) {
	t.Setenv(helperEnv, "")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--help"}, 0, "Usage of pitr-bench"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		{[]string{"extra"}, 2, "no arguments"},
		{[]string{"--changes", "0"}, 2, "must be positive"},
		{[]string{"--nodes", "0"}, 2, "not a positive integer"},
		{[]string{"--nodes", "300,600"}, 2, "only with --requests"},
		{[]string{"--requests", "--latency", "x"}, 2, "--latency"},
		{[]string{"--requests", "--saves", "7"}, 2, "--changes + 3"},
		{[]string{"--scale", "--scale-sizes", "x"}, 2, "--scale-sizes"},
		{[]string{"--history", "--saves", "19"}, 2, "at least 20"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(c.args, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d and a message containing %q", c.args, code, stderr.String(), c.code, c.msg)
		}
		if stdout.Len() > 0 {
			t.Errorf("Main(%q) wrote a report: %q", c.args, stdout.String())
		}
	}
}

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	o, code := parseFlags([]string{"--requests", "--nodes", "300,600", "--saves", "20", "--latency", "0ms,5ms"}, &stderr)
	if code >= 0 {
		t.Fatalf("parseFlags: exit %d, %s", code, stderr.String())
	}
	if !o.requests || o.nodes != 300 || !slices.Equal(o.nodeList, intList{300, 600}) || o.saves != 20 ||
		!slices.Equal(o.latencies, []time.Duration{0, 5 * time.Millisecond}) || o.changes != 5 || o.runs != 3 || o.write != "" {
		t.Errorf("parseFlags: %+v", o)
	}
	o, code = parseFlags(nil, &stderr)
	if code >= 0 || o.nodes != 2000 || o.seed != 1 || o.saves != 1000 || o.requests || o.history || o.scale || o.write != "" {
		t.Errorf("parseFlags of no arguments: %+v, exit %d", o, code)
	}
}

func TestWithoutProgress(t *testing.T) {
	out := "pitr: restoring save X\npitr: restore: 3.1 MB of 18.7 MB (17 %)\npitr: restore: 18.7 MB of 18.7 MB (100 %)\npitr: restored 4 nodes\n"
	if got, want := withoutProgress(out), "pitr: restoring save X\npitr: restored 4 nodes\n"; got != want {
		t.Errorf("withoutProgress = %q, want %q", got, want)
	}
}
