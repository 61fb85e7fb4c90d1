package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// TestOneWriter checks that a second server for a session another server is
// saving refuses to start, naming the holder's host, and that --takeover
// fences the old holder: its next save fails and it says it was fenced.
func TestOneWriter(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	s1 := startServer(t, st, serveOpts{})
	s1.initSession(t)
	s1.put(t, "x", client.NodeInput{Type: "object"})
	s1.saveNow(t)

	o := serveOpts{dataDir: filepath.Join(t.TempDir(), "second")}
	p := startProc(t, []string{st.secret}, st.env, serveArgs(st, o, "127.0.0.1:"+freePort(t))...)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		t.Fatalf("a second pitr serve for a held session still runs after 45s (SPEC: refuses within 30 s)")
	}
	host, _ := os.Hostname()
	if code, out := p.exitCode(), p.out.String(); code == 0 || !strings.Contains(out, host) {
		t.Errorf("second pitr serve: exit %d, output %q; want a failure naming the holder's host %q", code, tail(out, 2000), host)
	}

	s2 := startServer(t, st, serveOpts{args: []string{"--takeover"}})
	s2.requireGraph(t, "server that took over", s1.graph(t))
	s1.put(t, "y", client.NodeInput{Type: "object"})
	r, err := s1.admin(t).Save(within(t, time.Minute))
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Errorf("POST /v1/saves on the fenced server: %+v %v, want a failure answer", r, err)
	}
	waitFor(t, 30*time.Second, "the fenced server to say so in last_error", func() (bool, string) {
		in := s1.session(t)
		return in.LastError != nil && strings.Contains(strings.ToLower(*in.LastError), "fenc"), fmt.Sprintf("%+v", in)
	})
	s2.put(t, "z", client.NodeInput{Type: "object"})
	if r := s2.saveNow(t); r.Unchanged || r.NodeCount != 2 {
		t.Errorf("save by the new holder: %+v, want a new save of 2 nodes", r)
	}
}
