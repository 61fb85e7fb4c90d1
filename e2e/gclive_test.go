package e2e

import (
	"strings"
	"testing"
)

// TestGCRefusesShortGraceWhileSaving: while a server holds a session's
// writer claim, gc refuses a grace shorter than the default (a save in
// flight relies on it), naming the session and the server, unless forced;
// once the server stopped, the same gc runs.
func TestGCRefusesShortGraceWhileSaving(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s := startSaved(t, st)
	r := st.pitr(t, "gc", "--grace", "0s")
	if r.code == 0 || !strings.Contains(r.stderr, "default") || !strings.Contains(r.stderr, "--i-know-no-server-is-saving") {
		t.Fatalf("gc --grace 0s with a live server: exit %d\n%s\nwant a refusal saying why and how to force it", r.code, r.stderr)
	}
	st.mustPitr(t, "gc", "--grace", "0s", "--dry-run")
	st.mustPitr(t, "gc", "--grace", "1h")
	forced := st.mustPitr(t, "gc", "--grace", "0s", "--i-know-no-server-is-saving")
	if !strings.Contains(forced.stderr, "warning") {
		t.Errorf("forced short-grace gc does not warn:\n%s", forced.stderr)
	}
	s.stop(t)
	st.mustPitr(t, "gc", "--grace", "0s")
	st.mustPitr(t, "verify", "--read-data")
}
