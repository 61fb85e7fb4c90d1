package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pitr-dev/pitr/session"
)

// FuzzPutNode drives PUT /v1/nodes/{id} with arbitrary bodies: the decoder
// never panics, and whatever it refuses (400, or 413 for data over the
// limit) leaves the graph unchanged.
func FuzzPutNode(f *testing.F) {
	for _, seed := range []string{
		`{"type":"mesh"}`,
		`{"type":"mesh","owner":"ann","deps":["a","b"],"data":"AAECAw=="}`,
		`{"type":"mesh","owner":"COMMON","deps":[],"data":""}`,
		`{"type":"mesh","data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"type":"mesh","deps":["x"]}`,
		`{"type":5}`,
		`{"type":"mesh","data":"@@"}`,
		`{"type":"mesh"} {}`,
		`{"type":"mesh","deps":null,"owner":null,"data":null}`,
		`{"type":"\u00e9\ud800","deps":["a\u0000"]}`,
		`[`, `null`, ``, `"x"`, `{"Type":"mesh","DATA":"AA=="}`,
	} {
		f.Add([]byte(seed))
	}
	const maxData = 64
	f.Fuzz(func(t *testing.T, body []byte) {
		sess := session.New()
		saver := newFakeSaver()
		srv := New(sess, saver, Config{AdminPassword: adminPW, MaxNodeBytes: maxData})
		if _, err := sess.Put(session.Actor{Admin: true}, "x", session.NodeInput{Type: "t"}); err != nil {
			t.Fatal(err)
		}
		gen := sess.Gen()
		req := httptest.NewRequest("PUT", "/v1/nodes/x", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminPW)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if len(saver.Requests()) != 0 {
			t.Fatalf("internal error for body %q: %s", body, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			n, err := sess.Get("x")
			if err != nil || n.Version != 2 || len(n.Data) > maxData {
				t.Fatalf("accepted %q: %+v %v", body, n, err)
			}
			sent := bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) || bytes.Contains(body, []byte("\uFFFD"))
			if !utf8.ValidString(n.Type) || (strings.ContainsRune(n.Type, utf8.RuneError) && !sent) {
				t.Fatalf("accepted %q and stored a type the client did not send: %q", body, n.Type)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if sess.Gen() != gen {
				t.Fatalf("refused body %q changed the graph", body)
			}
			if !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"error":"`)) {
				t.Fatalf("error body %s", rec.Body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
	})
}
