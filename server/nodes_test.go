package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pitr-dev/pitr/session"
)

var (
	adminActor = session.Actor{User: "root", Admin: true}
	ann        = session.Actor{User: "ann"}
)

type nodeJSON struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Owner   string   `json:"owner"`
	Deps    []string `json:"deps"`
	Data    *string  `json:"data"`
	Version uint64   `json:"version"`
}

func TestPutBadRequestChangesNothing(t *testing.T) {
	long := strings.Repeat("a", 129)
	tests := []struct {
		name, path, body, want string
	}{
		{"bad id", "/v1/nodes/bad%20id", `{"type":"mesh"}`, "node id"},
		{"id too long", "/v1/nodes/" + long, `{"type":"mesh"}`, "node id"},
		{"id with slash", "/v1/nodes/a%2Fb", `{"type":"mesh"}`, "node id"},
		{"empty body", "/v1/nodes/n", ``, "empty body"},
		{"truncated", "/v1/nodes/n", `{"type":`, "truncated"},
		{"malformed", "/v1/nodes/n", `{"type":"mesh",}`, "malformed JSON"},
		{"not json", "/v1/nodes/n", `type=mesh`, "malformed JSON"},
		{"array body", "/v1/nodes/n", `[]`, "expected an object"},
		{"unknown field", "/v1/nodes/n", `{"type":"mesh","colour":"red"}`, `unknown field "colour"`},
		{"type not string", "/v1/nodes/n", `{"type":5}`, `field "type": expected a string`},
		{"owner not string", "/v1/nodes/n", `{"type":"mesh","owner":5}`, `field "owner"`},
		{"owner object", "/v1/nodes/n", `{"type":"mesh","owner":{}}`, `field "owner"`},
		{"deps not array", "/v1/nodes/n", `{"type":"mesh","deps":"keep"}`, `"deps"`},
		{"dep not string", "/v1/nodes/n", `{"type":"mesh","deps":[1]}`, `deps`},
		{"bad dep id", "/v1/nodes/n", `{"type":"mesh","deps":["a b"]}`, "dep"},
		{"duplicate dep", "/v1/nodes/n", `{"type":"mesh","deps":["keep","keep"]}`, "twice"},
		{"self dep", "/v1/nodes/n", `{"type":"mesh","deps":["n"]}`, "itself"},
		{"bad base64", "/v1/nodes/n", `{"type":"mesh","data":"@@@@"}`, "base64"},
		{"url base64", "/v1/nodes/n", `{"type":"mesh","data":"__8="}`, "base64"},
		{"data not string", "/v1/nodes/n", `{"type":"mesh","data":5}`, `field "data"`},
		{"missing type", "/v1/nodes/n", `{"owner":"COMMON"}`, "type"},
		{"null body", "/v1/nodes/n", `null`, "type"},
		{"type with control char", "/v1/nodes/n", `{"type":"a\u0001b"}`, "control"},
		{"bad owner", "/v1/nodes/n", `{"type":"mesh","owner":"a b"}`, "owner"},
		{"trailing object", "/v1/nodes/n", `{"type":"mesh"} {}`, "trailing"},
		{"trailing garbage", "/v1/nodes/n", `{"type":"mesh"}x`, "trailing"},
		{"replace with bad deps", "/v1/nodes/keep", `{"type":"mesh","deps":[""]}`, "dep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := activeEnv(t)
			mustPut(t, e.sess, adminActor, "keep", session.NodeInput{Type: "mesh", Data: []byte("x")})
			gen := e.sess.Gen()
			r := e.do("PUT", tc.path, tc.body, "admin").want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
			if e.sess.Gen() != gen || e.sess.NodeCount() != 1 {
				t.Fatal("bad request changed the graph")
			}
		})
	}
}

func TestOwnerBadRequest(t *testing.T) {
	tests := []struct {
		name, path, body, want string
	}{
		{"missing owner", "/v1/nodes/keep/owner", `{}`, "required"},
		{"null owner", "/v1/nodes/keep/owner", `{"owner":null}`, "required"},
		{"empty owner", "/v1/nodes/keep/owner", `{"owner":""}`, "empty"},
		{"owner not string", "/v1/nodes/keep/owner", `{"owner":7}`, `field "owner"`},
		{"bad owner", "/v1/nodes/keep/owner", `{"owner":"x y"}`, "owner"},
		{"unknown field", "/v1/nodes/keep/owner", `{"owner":"ann","x":1}`, "unknown field"},
		{"trailing", "/v1/nodes/keep/owner", `{"owner":"ann"}]`, "trailing"},
		{"bad id", "/v1/nodes/a%20b/owner", `{"owner":"ann"}`, "node id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := activeEnv(t)
			mustPut(t, e.sess, adminActor, "keep", session.NodeInput{Type: "mesh"})
			gen := e.sess.Gen()
			r := e.do("POST", tc.path, tc.body, "admin").want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q does not contain %q", msg, tc.want)
			}
			if e.sess.Gen() != gen {
				t.Fatal("bad request changed the graph")
			}
		})
	}
}

func TestBadIDOnGetAndDelete(t *testing.T) {
	e := activeEnv(t)
	e.do("GET", "/v1/nodes/a%20b", "", "user").want(t, 400)
	e.do("DELETE", "/v1/nodes/a%20b", "", "user").want(t, 400)
}

func TestOwnershipForbidden(t *testing.T) {
	e := activeEnv(t)
	mustPut(t, e.sess, ann, "cube", session.NodeInput{Type: "mesh", Owner: "ann"})
	mustPut(t, e.sess, ann, "free", session.NodeInput{Type: "mesh"})
	tests := []struct {
		name, method, path, body, user string
	}{
		{"bob replaces ann's node", "PUT", "/v1/nodes/cube", `{"type":"mesh"}`, "bob"},
		{"anonymous replaces ann's node", "PUT", "/v1/nodes/cube", `{"type":"mesh"}`, ""},
		{"bob deletes ann's node", "DELETE", "/v1/nodes/cube", ``, "bob"},
		{"bob takes ann's node", "POST", "/v1/nodes/cube/owner", `{"owner":"bob"}`, "bob"},
		{"ann gives a node to bob", "POST", "/v1/nodes/free/owner", `{"owner":"bob"}`, "ann"},
		{"ann creates a node for bob", "PUT", "/v1/nodes/new", `{"type":"mesh","owner":"bob"}`, "ann"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gen := e.sess.Gen()
			hdr := []string{"user"}
			if tc.user != "" {
				hdr = append(hdr, "X-Pitr-User", tc.user)
			}
			r := e.do(tc.method, tc.path, tc.body, hdr...).want(t, http.StatusForbidden)
			r.errMsg(t)
			if e.sess.Gen() != gen {
				t.Fatal("forbidden request changed the graph")
			}
		})
	}
	// the owner and the admin may
	e.do("PUT", "/v1/nodes/cube", `{"type":"mesh","owner":"ann"}`, "user", "X-Pitr-User", "ann").want(t, 200)
	e.do("PUT", "/v1/nodes/cube", `{"type":"mesh","owner":"bob"}`, "admin").want(t, 200)
}

func TestNotFound(t *testing.T) {
	e := activeEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/nodes/ghost", ""},
		{"DELETE", "/v1/nodes/ghost", ""},
		{"POST", "/v1/nodes/ghost/owner", `{"owner":"COMMON"}`},
	} {
		r := e.do(c.method, c.path, c.body, "admin").want(t, http.StatusNotFound)
		if msg := r.errMsg(t); !strings.Contains(msg, "ghost") {
			t.Errorf("%s %s: message %q does not name the node", c.method, c.path, msg)
		}
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t, Config{MaxNodeBytes: 16})
	if err := e.sess.Init(); err != nil {
		t.Fatal(err)
	}
	put := func(data []byte) resp {
		body := fmt.Sprintf(`{"type":"blob","data":%q}`, base64.StdEncoding.EncodeToString(data))
		return e.do("PUT", "/v1/nodes/blob", body)
	}
	put(bytes.Repeat([]byte{0xff}, 16)).want(t, 200)
	gen := e.sess.Gen()
	r := put(bytes.Repeat([]byte{1}, 17)).want(t, http.StatusRequestEntityTooLarge)
	if msg := r.errMsg(t); !strings.Contains(msg, "17 bytes") {
		t.Fatalf("message %q", msg)
	}
	// a body far over the limit is cut off while reading
	r = put(bytes.Repeat([]byte{2}, 2<<20)).want(t, http.StatusRequestEntityTooLarge)
	if msg := r.errMsg(t); !strings.Contains(msg, "larger than") {
		t.Fatalf("message %q", msg)
	}
	r = e.do("PUT", "/v1/nodes/blob", `{"type":"blob","deps":[`+strings.Repeat(` `, 2<<20)+`]}`)
	r.want(t, http.StatusRequestEntityTooLarge)
	if e.sess.Gen() != gen {
		t.Fatal("refused put changed the graph")
	}
	if got := putBodyLimit(1 << 62); got <= 1<<62 {
		t.Fatalf("putBodyLimit overflowed: %d", got)
	}
}

func TestNodeRoundTrip(t *testing.T) {
	e := newEnv(t, Config{AdminPassword: adminPW}) // user operations open
	data := make([]byte, 3*256+1)
	for i := range data {
		data[i] = byte(i * 7)
	}
	body := fmt.Sprintf(`{"type":"mesh","owner":"COMMON","deps":[],"data":%q}`, base64.StdEncoding.EncodeToString(data))
	// waiting: only the admin may put
	e.do("PUT", "/v1/nodes/obj.1_x-Y", body, "X-Pitr-User", "ann").want(t, 403)
	for version := uint64(1); version <= 2; version++ {
		r := e.do("PUT", "/v1/nodes/obj.1_x-Y", body, "admin").want(t, 200)
		if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var put nodeJSON
		r.decode(t, &put)
		if put.Data != nil || put.Version != version || put.ID != "obj.1_x-Y" || put.Owner != session.Common || put.Type != "mesh" || put.Deps == nil {
			t.Fatalf("put response %s", r.body)
		}
	}
	r := e.do("GET", "/v1/nodes/obj.1_x-Y", "").want(t, 200)
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cl := r.hdr.Get("Content-Length"); cl != strconv.Itoa(len(r.body)) {
		t.Fatalf("Content-Length %s, body %d bytes", cl, len(r.body))
	}
	var got nodeJSON
	r.decode(t, &got)
	if got.Data == nil || got.Version != 2 || got.Type != "mesh" || got.Owner != session.Common || len(got.Deps) != 0 || got.ID != "obj.1_x-Y" {
		t.Fatalf("get %s", r.body)
	}
	dec, err := base64.StdEncoding.DecodeString(*got.Data)
	if err != nil || !bytes.Equal(dec, data) {
		t.Fatalf("data did not round trip: %v", err)
	}
	// no data: comes back as "" with deps []
	e.do("PUT", "/v1/nodes/empty", `{"type":"t"}`, "admin").want(t, 200)
	r = e.do("GET", "/v1/nodes/empty", "").want(t, 200)
	if !bytes.Contains(r.body, []byte(`"data":""`)) || !bytes.Contains(r.body, []byte(`"deps":[]`)) {
		t.Fatalf("empty node %s", r.body)
	}
}

func TestListAndDelete(t *testing.T) {
	e := activeEnv(t)
	r := e.do("GET", "/v1/nodes", "", "user").want(t, 200)
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("empty list %s", r.body)
	}
	for _, c := range []struct{ id, body string }{
		{"c", `{"type":"t","deps":["a","b"]}`},
		{"a", `{"type":"t"}`},
		{"b", `{"type":"t","deps":["a"],"data":"AAE="}`},
	} {
		e.do("PUT", "/v1/nodes/"+c.id, c.body, "user").want(t, 200)
	}
	e.do("DELETE", "/v1/nodes/a", "", "user").want(t, 200)
	e.do("GET", "/v1/nodes/a", "", "user").want(t, 404)
	r = e.do("GET", "/v1/nodes", "", "user").want(t, 200)
	if bytes.Contains(r.body, []byte(`"data"`)) {
		t.Fatalf("list carries data: %s", r.body)
	}
	var list []nodeJSON
	r.decode(t, &list)
	ids := []string{}
	for _, n := range list {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"b", "c"}) {
		t.Fatalf("list ids %v", ids)
	}
	if list[0].Deps == nil || len(list[0].Deps) != 0 || list[0].Version != 2 {
		t.Fatalf("b after delete: %+v", list[0])
	}
	if !slices.Equal(list[1].Deps, []string{"b"}) || list[1].Version != 2 {
		t.Fatalf("c after delete: %+v", list[1])
	}
	if !bytes.Contains(r.body, []byte(`"deps":[]`)) {
		t.Fatalf("empty deps not []: %s", r.body)
	}
}

func TestOwnerEndpoint(t *testing.T) {
	e := activeEnv(t)
	mustPut(t, e.sess, adminActor, "cube", session.NodeInput{Type: "mesh", Data: []byte("d")})
	step := func(body, user string, wantOwner string, wantVersion uint64) {
		t.Helper()
		hdr := []string{"user"}
		if user == "root" {
			hdr = []string{"admin"}
		} else if user != "" {
			hdr = append(hdr, "X-Pitr-User", user)
		}
		r := e.do("POST", "/v1/nodes/cube/owner", body, hdr...).want(t, 200)
		var n nodeJSON
		r.decode(t, &n)
		if n.Owner != wantOwner || n.Version != wantVersion || n.Data != nil || n.ID != "cube" {
			t.Fatalf("owner response %s", r.body)
		}
	}
	step(`{"owner":"ann"}`, "ann", "ann", 2)
	step(`{"owner":"ann"}`, "ann", "ann", 2) // no change, no new version
	step(`{"owner":"COMMON"}`, "ann", "COMMON", 3)
	step(`{"owner":"bob"}`, "root", "bob", 4)
	n, err := e.sess.Get("cube")
	if err != nil || n.Owner != "bob" || string(n.Data) != "d" {
		t.Fatalf("after owner changes: %+v %v", n, err)
	}
}

func TestPutResponseShape(t *testing.T) {
	e := activeEnv(t)
	r := e.do("PUT", "/v1/nodes/x", `{"type":"mesh","owner":"ann","deps":["y"],"data":"aGk="}`, "user", "X-Pitr-User", "ann").want(t, 200)
	var m map[string]json.RawMessage
	r.decode(t, &m)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"deps", "id", "owner", "type", "version"}) {
		t.Fatalf("keys %v", keys)
	}
}
