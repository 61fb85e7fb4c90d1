package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/client"
)

// The tests drive `pitr serve` through the Go client of package client;
// the helpers below are thin wrappers that fail the test on an error. Their
// clients send every request once (no retries: a test sees each answer as
// the server gave it) through wireCheck, which checks the raw answers.

// newServer is the server s of proc p listening on addr.
func newServer(t testing.TB, p *proc, addr, dataDir string, st *store) *server {
	return &server{proc: p, url: "http://" + addr, dataDir: dataDir, st: st,
		http: &http.Client{Timeout: 2 * time.Minute, Transport: wireCheck{errorf: t.Errorf, next: http.DefaultTransport}}}
}

// api is a client of s sending password (none if empty) and acting as user
// (anonymous if empty).
func (s *server) api(t testing.TB, password, user string) *client.Client {
	t.Helper()
	c, err := client.New(s.url, client.Options{Password: password, User: user, HTTP: s.http, Retries: -1})
	if err != nil {
		t.Fatalf("client of %s: %v", s.url, err)
	}
	return c
}

// admin is a client of s with the admin password.
func (s *server) admin(t testing.TB) *client.Client { return s.api(t, adminPW, "") }

// as is a client of s acting as user, without a password.
func (s *server) as(t testing.TB, user string) *client.Client { return s.api(t, "", user) }

// anon is a client of s without a password or a user.
func (s *server) anon(t testing.TB) *client.Client { return s.api(t, "", "") }

// answer is the outcome of a client call as the tests check it: 200 and ""
// for success (wireCheck fails any other 2xx), else the status and message
// of the server's *client.APIError. A transport error fails t.
func answer(t testing.TB, err error) (int, string) {
	t.Helper()
	if err == nil {
		return http.StatusOK, ""
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("%v", err)
	}
	return ae.Status, ae.Message
}

// within is a context of t that ends after d.
func within(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// node is a node with its data, as GET /v1/nodes/{id} answers it.
type node struct {
	client.Node
	Data []byte
}

func (s *server) initSession(t testing.TB) {
	t.Helper()
	in, err := s.admin(t).InitSession(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if in.State != "active" {
		t.Fatalf("POST /v1/session/init: state %q, want active", in.State)
	}
}

// put puts node id as the admin.
func (s *server) put(t testing.TB, id string, in client.NodeInput) client.Node {
	t.Helper()
	n, err := s.admin(t).PutNode(t.Context(), id, in)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

// getNode reads node id with its data, anonymously.
func (s *server) getNode(t testing.TB, id string) node {
	t.Helper()
	n, data, err := s.anon(t).GetNode(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return node{Node: *n, Data: data}
}

// deleteNode deletes node id as the admin.
func (s *server) deleteNode(t testing.TB, id string) {
	t.Helper()
	if err := s.admin(t).DeleteNode(t.Context(), id); err != nil {
		t.Fatal(err)
	}
}

// setOwner gives node id to owner as the admin.
func (s *server) setOwner(t testing.TB, id, owner string) client.Node {
	t.Helper()
	n, err := s.admin(t).SetOwner(t.Context(), id, owner)
	if err != nil {
		t.Fatal(err)
	}
	return *n
}

func (s *server) session(t testing.TB) client.SessionInfo {
	t.Helper()
	in, err := s.anon(t).Session(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return *in
}

// saveNow is POST /v1/saves, which must succeed.
func (s *server) saveNow(t testing.TB) client.SaveResult {
	t.Helper()
	r, err := s.admin(t).Save(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return *r
}

func (s *server) saves(t testing.TB) []client.SaveSummary {
	t.Helper()
	saves, err := s.anon(t).ListSaves(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return saves
}

// graph reads every node, with its data, through the API.
func (s *server) graph(t testing.TB) []node {
	t.Helper()
	c := s.anon(t)
	list, err := c.ListNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(list, func(a, b client.Node) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("GET /v1/nodes not sorted by id: %+v", list)
	}
	out := make([]node, 0, len(list))
	for _, m := range list {
		meta, data, err := c.GetNode(t.Context(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*meta, m) {
			t.Errorf("GET /v1/nodes/%s = %+v, but GET /v1/nodes lists %+v", m.ID, *meta, m)
		}
		if data == nil {
			data = []byte{}
		}
		out = append(out, node{Node: *meta, Data: data})
	}
	return out
}

// requireGraph checks that the server's graph is exactly want.
func (s *server) requireGraph(t testing.TB, what string, want []node) {
	t.Helper()
	got := s.graph(t)
	if reflect.DeepEqual(got, want) {
		return
	}
	t.Errorf("%s: graph differs (%d nodes, want %d)", what, len(got), len(want))
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w *node
		if i < len(got) {
			g = &got[i]
		}
		if i < len(want) {
			w = &want[i]
		}
		if g == nil || w == nil || !reflect.DeepEqual(*g, *w) {
			t.Errorf("  node %d: got %s, want %s", i, describe(g), describe(w))
		}
	}
}

func describe(n *node) string {
	if n == nil {
		return "none"
	}
	return fmt.Sprintf("{id %q type %q owner %q deps %q version %d, %d data bytes}", n.ID, n.Type, n.Owner, n.Deps, n.Version, len(n.Data))
}

// sessionJSON is the data dir's session.json.
type sessionJSON struct {
	Session     string    `json:"session"`
	SaveID      string    `json:"save_id"`
	SaveTime    time.Time `json:"save_time"`
	Initialized bool      `json:"initialized"`
	NodeCount   int       `json:"node_count"`
}

func readSessionJSON(t testing.TB, dir string) sessionJSON {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		t.Fatalf("data dir: %v", err)
	}
	requireKeys(t, "session.json", b, []string{"session", "save_id", "save_time", "initialized", "node_count"})
	var sj sessionJSON
	if err := json.Unmarshal(b, &sj); err != nil {
		t.Fatalf("session.json: %v: %s", err, b)
	}
	return sj
}

// eventStream is an open GET /v1/events, read into a channel.
type eventStream struct {
	cancel context.CancelFunc
	st     *client.Stream
	events chan client.Event // closed when the stream ends
}

// openEvents opens GET /v1/events?user=NAME (without a password) and
// returns the status; the stream only when it is 200.
func (s *server) openEvents(t testing.TB, user string) (*eventStream, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := s.anon(t).Events(ctx, user)
	if err != nil {
		cancel()
		code, msg := answer(t, err)
		t.Logf("GET /v1/events?user=%s: %d %s", user, code, msg)
		return nil, code
	}
	es := &eventStream{cancel: cancel, st: st, events: make(chan client.Event, 1024)}
	go es.read(ctx)
	t.Cleanup(es.close)
	return es, http.StatusOK
}

func (es *eventStream) read(ctx context.Context) {
	defer close(es.events)
	for {
		ev, err := es.st.Next()
		if err != nil {
			return
		}
		select {
		case es.events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// close ends the stream from the client's side.
func (es *eventStream) close() {
	es.cancel()
	_ = es.st.Close()
}

// waitEvent waits for an event whose data contains substr.
func (es *eventStream) waitEvent(t testing.TB, timeout time.Duration, substr string) client.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []string
	for {
		select {
		case ev, ok := <-es.events:
			if !ok {
				t.Fatalf("event stream ended before an event with %q (saw %q)", substr, seen)
			}
			if strings.Contains(string(ev.Data), substr) {
				return ev
			}
			seen = append(seen, ev.Type+" "+string(ev.Data))
		case <-timer.C:
			t.Fatalf("no event with %q within %v (saw %q)", substr, timeout, seen)
		}
	}
}

func fmtStrings(s []string) string { return fmt.Sprintf("%q", s) }

func fmtSaves(saves []client.SaveSummary) string {
	var b strings.Builder
	b.WriteString("[")
	for i, s := range saves {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s %s", s.ID, s.Time.Format(time.RFC3339Nano), s.Reason)
	}
	b.WriteString("]")
	return b.String()
}
