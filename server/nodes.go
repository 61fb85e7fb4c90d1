package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pitr-dev/pitr/session"
)

// bodySlack is what a PUT body may hold beyond the base64 of the largest
// node data: type, owner, up to session.MaxDeps ids and JSON punctuation.
const bodySlack = 1 << 20

// smallBodyLimit bounds bodies that carry no node data.
const smallBodyLimit = 64 << 10

// putBody is the body of PUT /v1/nodes/{id}.
type putBody struct {
	Type  utf8String `json:"type"`
	Owner string     `json:"owner"`
	Deps  []string   `json:"deps"`
	Data  []byte     `json:"data"` // standard base64 in JSON
}

// utf8String is a JSON string field that must be valid UTF-8 as sent:
// encoding/json would silently turn invalid bytes and lone surrogate
// escapes into U+FFFD, storing something the client did not send. (Owners,
// deps and user names are checked by their ASCII-only rules.)
type utf8String string

func (u *utf8String) UnmarshalJSON(raw []byte) error {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	// A U+FFFD the client sent itself (escaped or not) is no sign of damage.
	sentFFFD := bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) || bytes.Contains(raw, []byte(string(utf8.RuneError)))
	if !utf8.Valid(raw) || (strings.ContainsRune(v, utf8.RuneError) && !sentFFFD) {
		return badRequest(`field "type": not valid UTF-8 (invalid bytes or an unpaired surrogate escape)`)
	}
	*u = utf8String(v)
	return nil
}

// putBodyLimit is the most bytes a PUT body may have for node data of at
// most maxData bytes.
func putBodyLimit(maxData int64) int64 {
	if maxData > (math.MaxInt64-bodySlack)/4*3-3 {
		return math.MaxInt64
	}
	return (maxData+2)/3*4 + bodySlack
}

// decodeNode decodes a PUT body. Errors: a *requestError (400 naming the
// problem, or 413 for data over maxData) or a *http.MaxBytesError (413).
func decodeNode(r io.Reader, maxData int64) (session.NodeInput, error) {
	var b putBody
	if err := decodeStrict(r, &b); err != nil {
		return session.NodeInput{}, err
	}
	if int64(len(b.Data)) > maxData {
		return session.NodeInput{}, &requestError{
			status: http.StatusRequestEntityTooLarge,
			msg:    fmt.Sprintf("node data is %d bytes, at most %d allowed", len(b.Data), maxData),
		}
	}
	return session.NodeInput{Type: string(b.Type), Owner: b.Owner, Deps: b.Deps, Data: b.Data}, nil
}

// nodeID returns the {id} path value, validated.
func nodeID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := session.ValidID(id); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) putNode(w http.ResponseWriter, r *http.Request, a session.Actor) {
	id, err := nodeID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body := http.MaxBytesReader(w, r.Body, putBodyLimit(s.cfg.MaxNodeBytes))
	in, err := decodeNode(body, s.cfg.MaxNodeBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.sess.Put(a, id, in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n.Meta())
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request, _ session.Actor) {
	id, err := nodeID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.sess.Get(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeNode(w, n)
}

// writeNode answers n with its data, streaming the base64 rather than
// building the whole document in memory (node data may be large).
func writeNode(w http.ResponseWriter, n *session.Node) {
	meta, err := json.Marshal(n.Meta()) // {"id":…,"version":N}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error: encode node")
		return
	}
	head := append(meta[:len(meta)-1:len(meta)-1], `,"data":"`...)
	const tail = "\"}\n"
	size := len(head) + base64.StdEncoding.EncodedLen(len(n.Data)) + len(tail)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.Write(head)
	enc := base64.NewEncoder(base64.StdEncoding, bw)
	_, _ = enc.Write(n.Data)
	_ = enc.Close()
	_, _ = bw.WriteString(tail)
	_ = bw.Flush()
}

func (s *Server) listNodes(w http.ResponseWriter, _ *http.Request, _ session.Actor) {
	nodes := s.sess.List()
	out := make([]session.NodeMeta, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Meta())
	}
	writeJSON(w, http.StatusOK, out)
}

type deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func (s *Server) deleteNode(w http.ResponseWriter, r *http.Request, a session.Actor) {
	id, err := nodeID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.sess.Delete(a, id); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, deleted{ID: id, Deleted: true})
}

// ownerBody is the body of POST /v1/nodes/{id}/owner.
type ownerBody struct {
	Owner *string `json:"owner"`
}

func (s *Server) setOwner(w http.ResponseWriter, r *http.Request, a session.Actor) {
	id, err := nodeID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b ownerBody
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, smallBodyLimit), &b); err != nil {
		s.fail(w, r, err)
		return
	}
	if b.Owner == nil {
		s.fail(w, r, badRequest(`field "owner" is required (a user name or %q)`, session.Common))
		return
	}
	if *b.Owner == "" {
		s.fail(w, r, badRequest(`field "owner" is empty: give a user name or %q`, session.Common))
		return
	}
	n, err := s.sess.SetOwner(a, id, *b.Owner)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n.Meta())
}
