package server

import (
	"net/http"
	"strings"
	"testing"
)

func TestAuthMatrix(t *testing.T) {
	configs := map[string]Config{
		"open":       {},
		"serverOnly": {ServerPassword: serverPW},
		"adminOnly":  {AdminPassword: adminPW},
		"both":       {ServerPassword: serverPW, AdminPassword: adminPW},
	}
	creds := map[string]string{
		"none":   "",
		"server": "Bearer " + serverPW,
		"admin":  "Bearer " + adminPW,
		"wrong":  "Bearer nope",
	}
	tests := []struct {
		config, cred string
		user, admin  int // GET /v1/nodes, POST /v1/session/init
	}{
		{"open", "none", 200, 403},
		{"open", "server", 200, 403},
		{"open", "admin", 200, 403},
		{"open", "wrong", 200, 403},
		{"serverOnly", "none", 401, 403},
		{"serverOnly", "server", 200, 403},
		{"serverOnly", "admin", 401, 403},
		{"serverOnly", "wrong", 401, 403},
		{"adminOnly", "none", 200, 401},
		{"adminOnly", "server", 200, 401},
		{"adminOnly", "admin", 200, 200},
		{"adminOnly", "wrong", 200, 401},
		{"both", "none", 401, 401},
		{"both", "server", 200, 403},
		{"both", "admin", 200, 200},
		{"both", "wrong", 401, 401},
	}
	for _, tc := range tests {
		t.Run(tc.config+"/"+tc.cred, func(t *testing.T) {
			e := newEnv(t, configs[tc.config])
			var hdr []string
			if c := creds[tc.cred]; c != "" {
				hdr = []string{"Authorization", c}
			}
			for _, call := range []struct {
				method, path string
				want         int
			}{
				{"GET", "/v1/nodes", tc.user},
				{"GET", "/v1/session", tc.user},
				{"GET", "/v1/saves", tc.user},
				{"POST", "/v1/session/init", tc.admin},
			} {
				r := e.do(call.method, call.path, "", hdr...)
				if r.code != call.want {
					t.Fatalf("%s %s: status %d, want %d (%s)", call.method, call.path, r.code, call.want, r.body)
				}
				if r.code >= 400 {
					msg := r.errMsg(t)
					if strings.Contains(msg, serverPW) || strings.Contains(msg, adminPW) {
						t.Fatalf("error message leaks a password: %q", msg)
					}
				}
				if got := r.hdr.Get("WWW-Authenticate"); (r.code == 401) != (got == "Bearer") {
					t.Fatalf("status %d with WWW-Authenticate %q", r.code, got)
				}
			}
			// open endpoints, whatever the credentials
			e.do("GET", "/healthz", "", hdr...).want(t, 200)
		})
	}
}

func TestAuthHeaderParsing(t *testing.T) {
	e := newEnv(t, Config{ServerPassword: serverPW, AdminPassword: adminPW})
	for _, tc := range []struct {
		header string
		want   int
	}{
		{"bearer " + serverPW, 200},
		{"BEARER  " + serverPW + " ", 200},
		{"Basic " + serverPW, 401},
		{serverPW, 401},
		{"Bearer", 401},
		{"Bearer " + serverPW + "x", 401},
		{"Bearer " + serverPW[:len(serverPW)-1], 401},
	} {
		if r := e.do("GET", "/v1/nodes", "", "Authorization", tc.header); r.code != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.header, r.code, tc.want)
		}
	}
}

func TestUserHeader(t *testing.T) {
	e := activeEnv(t)
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"absent", []string{"user"}, 200},
		{"valid", []string{"user", "X-Pitr-User", "ann"}, 200},
		{"empty", []string{"user", "X-Pitr-User", ""}, 400},
		{"bad chars", []string{"user", "X-Pitr-User", "ann smith"}, 400},
		{"reserved", []string{"user", "X-Pitr-User", "COMMON"}, 400},
		{"twice", []string{"user", "X-Pitr-User", "ann", "X-Pitr-User", "bob"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := e.sess.Gen()
			r := e.do("PUT", "/v1/nodes/n-"+strings.ReplaceAll(tc.name, " ", "_"), `{"type":"mesh"}`, tc.hdr...)
			r.want(t, tc.want)
			if tc.want == 400 {
				if msg := r.errMsg(t); !strings.Contains(msg, "X-Pitr-User") {
					t.Fatalf("message %q does not name the header", msg)
				}
				if e.sess.Gen() != gen {
					t.Fatal("bad request changed the graph")
				}
			}
		})
	}
}

func TestPutWhileWaitingNeedsAdmin(t *testing.T) {
	e := newEnv(t, Config{ServerPassword: serverPW, AdminPassword: adminPW})
	gen := e.sess.Gen()
	r := e.do("PUT", "/v1/nodes/a", `{"type":"mesh"}`, "user", "X-Pitr-User", "ann").want(t, 403)
	if msg := r.errMsg(t); !strings.Contains(msg, "waiting") {
		t.Fatalf("message %q", msg)
	}
	if e.sess.Gen() != gen {
		t.Fatal("refused put changed the graph")
	}
	e.do("PUT", "/v1/nodes/a", `{"type":"mesh"}`, "admin").want(t, 200)
}

func TestAccessLogHidesSecrets(t *testing.T) {
	e := activeEnv(t)
	e.do("GET", "/v1/nodes", "", "admin", "X-Pitr-User", "ann").want(t, 200)
	e.do("GET", "/v1/nodes", "", "Authorization", "Bearer wrong-"+serverPW).want(t, 401)
	e.do("PUT", "/v1/nodes/a", `{"type":"mesh"}`, "user").want(t, 200)
	logs := e.logs.String()
	if !strings.Contains(logs, "http request") || !strings.Contains(logs, "path=/v1/nodes") {
		t.Fatalf("no access log at debug level:\n%s", logs)
	}
	if strings.Contains(logs, serverPW) || strings.Contains(logs, adminPW) || strings.Contains(logs, "Bearer") {
		t.Fatalf("access log leaks credentials:\n%s", logs)
	}
}

func TestRouting(t *testing.T) {
	e := activeEnv(t)
	r := e.do("GET", "/nope", "").want(t, http.StatusNotFound)
	r.errMsg(t)
	r = e.do("PATCH", "/v1/nodes/a", "", "admin").want(t, http.StatusMethodNotAllowed)
	r.errMsg(t)
	if allow := r.hdr.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
		t.Fatalf("Allow %q", allow)
	}
	e.do("GET", "/v1/nodes/", "", "admin").want(t, http.StatusNotFound)
	e.do("HEAD", "/healthz", "").want(t, 200)
}

func TestPathsAreNeverRedirected(t *testing.T) {
	e := activeEnv(t)
	for _, id := range []string{".", ".."} {
		e.do("PUT", "/v1/nodes/"+id, `{"type":"t"}`, "admin").want(t, 200)
		r := e.do("GET", "/v1/nodes/"+id, "", "admin").want(t, 200)
		var n nodeJSON
		r.decode(t, &n)
		if n.ID != id {
			t.Fatalf("got node %q, want %q", n.ID, id)
		}
		e.do("POST", "/v1/nodes/"+id+"/owner", `{"owner":"ann"}`, "admin").want(t, 200)
		e.do("DELETE", "/v1/nodes/"+id, "", "admin").want(t, 200)
	}
	e.do("PUT", "/v1/nodes/%2E", `{"type":"t"}`, "admin").want(t, 200)
	for _, p := range []string{"//v1/nodes", "/v1//nodes", "/v1/./session", "/v1/nodes/a/../b", "/v1/nodes/a/", "/v1/nodes/./owner/x"} {
		r := e.do("GET", p, "", "admin")
		if r.code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, r.code)
			continue
		}
		r.errMsg(t)
	}
	if e.sess.NodeCount() != 1 {
		t.Fatalf("nodes %d", e.sess.NodeCount())
	}
}
