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
func (failingJournal) Err() error { return nil } // the failure shows at the first write

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
	unsaved := time.Now().Add(-10 * time.Minute)
	e.saver.status = replicate.Status{SavingSince: &since, Warning: "a save has been running for 40s", UnsavedSince: &unsaved}
	var in sessionInfo
	e.do("GET", "/v1/session", "", "user").want(t, 200).decode(t, &in)
	if in.UnsavedSeconds < 600 || in.UnsavedSeconds > 700 {
		t.Fatalf("unsaved_seconds %v, want about 600", in.UnsavedSeconds)
	}
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

// A type that is not valid UTF-8 as sent is refused with 400 naming the
// field, and nothing is stored; a U+FFFD the client sent is kept.
func TestTypeMustBeValidUTF8(t *testing.T) {
	e := activeEnv(t)
	for name, body := range map[string]string{
		"invalid bytes":     "{\"type\":\"mesh\xff\xfe\"}",
		"lone surrogate":    `{"type":"mesh\ud800"}`,
		"reversed pair":     `{"type":"\udc00\ud800"}`,
		"truncated 2-byte":  "{\"type\":\"\xc3\"}",
		"overlong encoding": "{\"type\":\"\xc0\xaf\"}",
	} {
		msg := e.do("PUT", "/v1/nodes/u1", body, "admin").want(t, 400).errMsg(t)
		if !strings.Contains(msg, `"type"`) || !strings.Contains(msg, "UTF-8") {
			t.Errorf("%s: %q", name, msg)
		}
		e.do("GET", "/v1/nodes/u1", "", "user").want(t, 404)
	}
	for _, body := range []string{`{"type":"m\ufffdsh"}`, "{\"type\":\"m\xef\xbf\xbdsh\"}", `{"type":"caf\u00e9 \ud83d\ude00"}`} {
		e.do("PUT", "/v1/nodes/u2", body, "admin").want(t, 200)
	}
}

// Invalid UTF-8 in the ASCII-only fields is refused by their rules, naming
// the field.
func TestOtherFieldsRefuseInvalidUTF8(t *testing.T) {
	e := activeEnv(t)
	for field, r := range map[string]resp{
		"owner":    e.do("PUT", "/v1/nodes/u1", "{\"type\":\"t\",\"owner\":\"ann\xff\"}", "admin"),
		"dep":      e.do("PUT", "/v1/nodes/u1", "{\"type\":\"t\",\"deps\":[\"a\xff\"]}", "admin"),
		userHeader: e.do("PUT", "/v1/nodes/u1", `{"type":"t"}`, "user", userHeader, "ann\xff"),
		"user":     e.do("GET", "/v1/events?user=ann%FF", "", "user"),
	} {
		msg := r.want(t, 400).errMsg(t)
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(field)) {
			t.Errorf("%s with invalid UTF-8: %q does not name the field", field, msg)
		}
	}
	e.do("GET", "/v1/nodes/u1", "", "user").want(t, 404)
}
