package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// httpClient is shared by the tests; every request has its own deadline.
var httpClient = &http.Client{Timeout: 2 * time.Minute}

// req is one API request.
type req struct {
	method, path string
	body         any    // JSON-encoded unless nil
	user         string // X-Pitr-User
	admin        bool   // Authorization: Bearer <admin password>
	token        string // Authorization: Bearer <token>, if not admin
	timeout      time.Duration
}

// try sends r and returns the status and body, or the transport error.
func (s *server) try(t testing.TB, r req) (int, []byte, error) {
	t.Helper()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			t.Fatalf("encode %s %s body: %v", r.method, r.path, err)
		}
		body = bytes.NewReader(b)
	}
	ctx := context.Background()
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, s.url+r.path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	if r.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.user != "" {
		hr.Header.Set("X-Pitr-User", r.user)
	}
	if r.admin {
		hr.Header.Set("Authorization", "Bearer "+adminPW)
	} else if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// do sends r and fails t on a transport error.
func (s *server) do(t testing.TB, r req) (int, []byte) {
	t.Helper()
	code, b, err := s.try(t, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return code, b
}

// ok sends r, requires 200 and decodes the body into out (unless nil).
func (s *server) ok(t testing.TB, r req, out any) []byte {
	t.Helper()
	code, b := s.do(t, r)
	if code != http.StatusOK {
		t.Fatalf("%s %s: status %d, want 200: %s", r.method, r.path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", r.method, r.path, b, err)
		}
	}
	return b
}

// nodeIn is the body of PUT /v1/nodes/{id}.
type nodeIn struct {
	Type  string   `json:"type"`
	Owner string   `json:"owner,omitempty"`
	Deps  []string `json:"deps"`
	Data  []byte   `json:"data"`
}

// node is a node as GET /v1/nodes/{id} answers it (Data nil in lists).
type node struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Owner   string   `json:"owner"`
	Deps    []string `json:"deps"`
	Data    []byte   `json:"data,omitempty"`
	Version uint64   `json:"version"`
}

type sessionInfo struct {
	Session   string   `json:"session"`
	State     string   `json:"state"`
	NodeCount int      `json:"node_count"`
	Users     []string `json:"users"`
	LastSave  *struct {
		ID     string    `json:"id"`
		Time   time.Time `json:"time"`
		Reason string    `json:"reason"`
	} `json:"last_save"`
	LastError *string `json:"last_error"`
}

// saveResult is the answer of POST /v1/saves.
type saveResult struct {
	ID             string    `json:"id"`
	Time           time.Time `json:"time"`
	Reason         string    `json:"reason"`
	NodeCount      int       `json:"node_count"`
	BytesTotal     int64     `json:"bytes_total"`
	BytesUploaded  int64     `json:"bytes_uploaded"`
	ChunksTotal    int64     `json:"chunks_total"`
	ChunksUploaded int64     `json:"chunks_uploaded"`
	DurationMS     float64   `json:"duration_ms"`
	Unchanged      bool      `json:"unchanged"`
}

// saveSummary is one save as GET /v1/saves and `pitr saves --json` list it.
type saveSummary struct {
	ID            string    `json:"id"`
	Time          time.Time `json:"time"`
	Reason        string    `json:"reason"`
	Initialized   bool      `json:"initialized"`
	NodeCount     int       `json:"node_count"`
	BytesTotal    int64     `json:"bytes_total"`
	BytesUploaded int64     `json:"bytes_uploaded"`
}

var (
	saveResultKeys  = []string{"id", "time", "reason", "node_count", "bytes_total", "bytes_uploaded", "chunks_total", "chunks_uploaded", "duration_ms", "unchanged"}
	saveSummaryKeys = []string{"id", "time", "reason", "initialized", "node_count", "bytes_total", "bytes_uploaded"}
)

// requireKeys checks that the JSON object obj has every key.
func requireKeys(t testing.TB, what string, obj []byte, keys []string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatalf("%s: not a JSON object: %v: %s", what, err, obj)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no field %q in %s", what, k, obj)
		}
	}
}

func (s *server) initSession(t testing.TB) {
	t.Helper()
	var in sessionInfo
	s.ok(t, req{method: "POST", path: "/v1/session/init", admin: true}, &in)
	if in.State != "active" {
		t.Fatalf("POST /v1/session/init: state %q, want active", in.State)
	}
}

// put puts node id as the admin.
func (s *server) put(t testing.TB, id string, in nodeIn) node {
	t.Helper()
	var n node
	s.ok(t, req{method: "PUT", path: "/v1/nodes/" + id, body: in, admin: true}, &n)
	return n
}

func (s *server) session(t testing.TB) sessionInfo {
	t.Helper()
	var in sessionInfo
	s.ok(t, req{method: "GET", path: "/v1/session"}, &in)
	return in
}

// saveNow is POST /v1/saves, which must succeed.
func (s *server) saveNow(t testing.TB) saveResult {
	t.Helper()
	var r saveResult
	b := s.ok(t, req{method: "POST", path: "/v1/saves", admin: true}, &r)
	requireKeys(t, "POST /v1/saves", b, saveResultKeys)
	return r
}

func (s *server) saves(t testing.TB) []saveSummary {
	t.Helper()
	var out []saveSummary
	b := s.ok(t, req{method: "GET", path: "/v1/saves"}, &out)
	var raw []json.RawMessage
	_ = json.Unmarshal(b, &raw)
	for _, o := range raw {
		requireKeys(t, "GET /v1/saves", o, saveSummaryKeys)
	}
	return out
}

// graph reads every node, with its data, through the API.
func (s *server) graph(t testing.TB) []node {
	t.Helper()
	var list []node
	s.ok(t, req{method: "GET", path: "/v1/nodes"}, &list)
	if !slices.IsSortedFunc(list, func(a, b node) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("GET /v1/nodes not sorted by id: %+v", list)
	}
	out := make([]node, 0, len(list))
	for _, m := range list {
		var n node
		s.ok(t, req{method: "GET", path: "/v1/nodes/" + m.ID}, &n)
		meta := n
		meta.Data = nil
		if !reflect.DeepEqual(meta, m) {
			t.Errorf("GET /v1/nodes/%s = %+v, but GET /v1/nodes lists %+v", m.ID, meta, m)
		}
		if n.Data == nil {
			n.Data = []byte{}
		}
		out = append(out, n)
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

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

// eventStream is an open GET /v1/events.
type eventStream struct {
	cancel context.CancelFunc
	body   io.ReadCloser
	events chan sseEvent // closed when the stream ends
}

// openEvents opens GET /v1/events?user=NAME and returns the status; the
// stream only when it is 200.
func (s *server) openEvents(t testing.TB, user string) (*eventStream, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/events?user="+user, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(hr) // no timeout: the stream stays open
	if err != nil {
		cancel()
		t.Fatalf("GET /v1/events?user=%s: %v", user, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Logf("GET /v1/events?user=%s: %d %s", user, resp.StatusCode, b)
		return nil, resp.StatusCode
	}
	es := &eventStream{cancel: cancel, body: resp.Body, events: make(chan sseEvent, 1024)}
	go es.read(ctx)
	t.Cleanup(es.close)
	return es, resp.StatusCode
}

func (es *eventStream) read(ctx context.Context) {
	defer close(es.events)
	sc := bufio.NewScanner(es.body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				select {
				case es.events <- ev:
				case <-ctx.Done():
					return
				}
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event:"):
			ev.name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if ev.data != "" {
				ev.data += "\n"
			}
			ev.data += strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
}

// close ends the stream from the client's side.
func (es *eventStream) close() {
	es.cancel()
	es.body.Close()
}

// waitEvent waits for an event whose data contains substr.
func (es *eventStream) waitEvent(t testing.TB, timeout time.Duration, substr string) sseEvent {
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
			if strings.Contains(ev.data, substr) {
				return ev
			}
			seen = append(seen, ev.name+" "+ev.data)
		case <-timer.C:
			t.Fatalf("no event with %q within %v (saw %q)", substr, timeout, seen)
		}
	}
}

func fmtStrings(s []string) string { return fmt.Sprintf("%q", s) }

func fmtSaves(saves []saveSummary) string {
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
