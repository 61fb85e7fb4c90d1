package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
)

// Once fenced, every edit answers 503 naming the holder, and the session
// says fenced; reads still work.
func TestFencedRefusesEdits(t *testing.T) {
	e := activeEnv(t)
	mustPut(t, e.sess, session.Actor{Admin: true}, "n", session.NodeInput{Type: "t"})
	e.sess.Fence("host-b (pid 7) holds the writer claim now")
	for _, r := range []struct{ method, path, body string }{
		{"PUT", "/v1/nodes/m", `{"type":"t"}`},
		{"DELETE", "/v1/nodes/n", ""},
		{"POST", "/v1/nodes/n/owner", `{"owner":"COMMON"}`},
	} {
		msg := e.do(r.method, r.path, r.body, "admin").want(t, 503).errMsg(t)
		if !strings.Contains(msg, "host-b") {
			t.Errorf("%s %s on a fenced server: %q, want the holder named", r.method, r.path, msg)
		}
	}
	e.do("GET", "/v1/nodes/n", "", "user").want(t, 200)
	var in sessionInfo
	e.do("GET", "/v1/session", "", "user").want(t, 200).decode(t, &in)
	if !in.Fenced || in.NodeCount != 1 {
		t.Fatalf("session of a fenced server: %+v, want fenced with its node", in)
	}
}

// failingJournal is a journal whose disk is gone.
type failingJournal struct{}

func (failingJournal) Append(session.Op) uint64 { return 1 }
func (failingJournal) Wait(context.Context, uint64) error {
	return errors.New("write journal: no space left on device")
}

// An edit that cannot be made durable on local disk is answered 503,
// never 200.
func TestNotDurableIs503(t *testing.T) {
	e := activeEnv(t)
	e.sess.SetJournal(failingJournal{}, 0)
	msg := e.do("PUT", "/v1/nodes/n", `{"type":"t"}`, "admin").want(t, 503).errMsg(t)
	if !strings.Contains(msg, "not durable") || !strings.Contains(msg, "no space") {
		t.Fatalf("PUT with a failing journal: %q", msg)
	}
}

// A save running now shows in saving_since; one stuck past the threshold
// fills last_error with its warning when there is no other error.
func TestSessionShowsRunningSave(t *testing.T) {
	e := activeEnv(t)
	since := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e.saver.status = replicate.Status{SavingSince: &since, Warning: "a save has been running for 40s"}
	var in sessionInfo
	e.do("GET", "/v1/session", "", "user").want(t, 200).decode(t, &in)
	if in.SavingSince == nil || !in.SavingSince.Equal(since) || in.LastError == nil || !strings.Contains(*in.LastError, "40s") {
		t.Fatalf("session during a stuck save: %+v", in)
	}
	e.saver.status = replicate.Status{}
	in = sessionInfo{}
	e.do("GET", "/v1/session", "", "user").want(t, 200).decode(t, &in)
	if in.SavingSince != nil || in.LastError != nil {
		t.Fatalf("session with no save running: %+v", in)
	}
}
