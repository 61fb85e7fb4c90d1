package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/client"
)

var (
	saveResultKeys  = []string{"id", "time", "reason", "node_count", "bytes_total", "bytes_uploaded", "chunks_total", "chunks_uploaded", "duration_ms", "unchanged"}
	saveSummaryKeys = []string{"id", "time", "reason", "initialized", "node_count", "bytes_total", "bytes_uploaded"}
)

// wireCheck is the transport of the tests' API clients. The typed client
// decodes answers into structs, which cannot tell a field the server left
// out from its zero value, nor an error body that is not JSON; wireCheck
// checks the raw answers for what docs/api.md promises and the tests
// checked on the bodies themselves before they used the client:
//
//   - success is 200, never another 2xx (so a nil error means 200);
//   - every error answer is a JSON object with an "error" field;
//   - POST /v1/saves answers every field of a save, GET /v1/saves every
//     field of each save;
//   - the node answers without data (PUT /v1/nodes/{id}, the owner route,
//     GET /v1/nodes) carry no "data" field.
//
// It reports with errorf (a t.Errorf): clients also run in the tests'
// goroutines, where t.Fatal must not be called.
type wireCheck struct {
	errorf func(format string, args ...any)
	next   http.RoundTripper
}

// wireRule is what wireCheck requires of one answer.
type wireRule struct {
	list      bool     // a JSON array of such objects
	keys      []string // fields every object has
	forbidden []string // fields no object has
}

// ruleFor is the rule for an answer of status to method path; ok is false
// when wireCheck need not read the body.
func ruleFor(method, path string, status int) (wireRule, bool) {
	switch {
	case status >= 400:
		return wireRule{keys: []string{"error"}}, true
	case status != http.StatusOK:
		return wireRule{}, false
	case method == http.MethodPost && path == "/v1/saves":
		return wireRule{keys: saveResultKeys}, true
	case method == http.MethodGet && path == "/v1/saves":
		return wireRule{list: true, keys: saveSummaryKeys}, true
	case method == http.MethodGet && path == "/v1/nodes":
		return wireRule{list: true, forbidden: []string{"data"}}, true
	case method == http.MethodPut && strings.HasPrefix(path, "/v1/nodes/"),
		method == http.MethodPost && strings.HasPrefix(path, "/v1/nodes/") && strings.HasSuffix(path, "/owner"):
		return wireRule{forbidden: []string{"data"}}, true
	}
	return wireRule{}, false
}

func (w wireCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	what := r.Method + " " + r.URL.Path
	if resp.StatusCode/100 == 2 && resp.StatusCode != http.StatusOK {
		w.errorf("%s: status %d, want 200 (every route answers 200 on success)", what, resp.StatusCode)
	}
	rule, ok := ruleFor(r.Method, r.URL.Path, resp.StatusCode)
	if !ok {
		return resp, nil
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", what, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	objs := [][]byte{b}
	if rule.list {
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			w.errorf("%s: %d answer is not a JSON array: %v: %.300s", what, resp.StatusCode, err, b)
		}
		objs = nil
		for _, o := range raw {
			objs = append(objs, o)
		}
	}
	for _, o := range objs {
		for _, p := range wireProblems(o, rule.keys, rule.forbidden) {
			w.errorf("%s: %d answer %s", what, resp.StatusCode, p)
		}
	}
	return resp, nil
}

// wireProblems says what the JSON object obj lacks of keys and holds of
// forbidden, or that it is not a JSON object.
func wireProblems(obj []byte, keys, forbidden []string) []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return []string{fmt.Sprintf("is not a JSON object: %v: %.300s", err, obj)}
	}
	var out []string
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			out = append(out, fmt.Sprintf("has no field %q: %.300s", k, obj))
		}
	}
	for _, k := range forbidden {
		if _, ok := m[k]; ok {
			out = append(out, fmt.Sprintf("has a field %q: %.300s", k, obj))
		}
	}
	return out
}

// requireKeys checks that the JSON object obj has every key.
func requireKeys(t testing.TB, what string, obj []byte, keys []string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatalf("%s: not a JSON object: %v: %s", what, err, obj)
	}
	for _, p := range wireProblems(obj, keys, nil) {
		t.Errorf("%s: %s", what, p)
	}
}

// wireCheck reports what the typed client cannot see and nothing else.
func TestWireCheck(t *testing.T) {
	t.Parallel()
	answers := map[string]struct {
		status int
		body   string
	}{
		"GET /v1/session":       {http.StatusCreated, `{"state":"active"}`},
		"POST /v1/session/init": {http.StatusConflict, `session is already active`},
		"POST /v1/saves":        {http.StatusOK, `{"id":"s","time":"2025-01-12T15:34:45.123Z","reason":"api"}`},
		"GET /v1/saves":         {http.StatusOK, `[{"id":"s","time":"2025-01-12T15:34:45.123Z","reason":"api","initialized":true,"node_count":1,"bytes_total":1,"bytes_uploaded":1}]`},
		"PUT /v1/nodes/n":       {http.StatusOK, `{"id":"n","type":"t","owner":"COMMON","deps":[],"version":1,"data":""}`},
		"GET /v1/nodes":         {http.StatusOK, `[{"id":"n","type":"t","owner":"COMMON","deps":[],"version":1}]`},
		"DELETE /v1/nodes/n":    {http.StatusNotFound, `{"error":"node \"n\" not found"}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.Method+" "+r.URL.Path]
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	var got []string
	hc := &http.Client{Transport: wireCheck{errorf: func(f string, args ...any) { got = append(got, fmt.Sprintf(f, args...)) }, next: http.DefaultTransport}}
	c, err := client.New(srv.URL, client.Options{HTTP: hc, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, _ = c.Session(ctx)
	_, _ = c.InitSession(ctx)
	_, _ = c.Save(ctx)
	_, _ = c.ListSaves(ctx)
	_, _ = c.PutNode(ctx, "n", client.NodeInput{Type: "t"})
	_, _ = c.ListNodes(ctx)
	_ = c.DeleteNode(ctx, "n")
	want := []string{
		"GET /v1/session: status 201",
		"POST /v1/session/init: 409 answer is not a JSON object",
		`POST /v1/saves: 200 answer has no field "node_count"`,
		`PUT /v1/nodes/n: 200 answer has a field "data"`,
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("wireCheck did not report %q; reported:\n%s", w, strings.Join(got, "\n"))
		}
	}
	// Missing save fields: node_count, bytes_total, bytes_uploaded,
	// chunks_total, chunks_uploaded, duration_ms, unchanged.
	if len(got) != 3+7 {
		t.Errorf("wireCheck reported %d problems, want 10:\n%s", len(got), strings.Join(got, "\n"))
	}
}
