package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/pitr-dev/pitr/session"
)

// userHeader names the caller's user.
const userHeader = "X-Pitr-User"

// level is what a request's credentials grant.
type level int

const (
	levelNone  level = iota // user operations need a password and none matched
	levelOpen               // no server password configured: user operations open
	levelUser               // presented the server password
	levelAdmin              // presented the admin password
)

// authenticator checks bearer passwords. It keeps only SHA-256 digests, so
// the comparison is constant-time and does not leak the password length.
type authenticator struct {
	server, admin *[sha256.Size]byte // nil when not configured
}

func newAuthenticator(serverPW, adminPW string) authenticator {
	var a authenticator
	if serverPW != "" {
		d := sha256.Sum256([]byte(serverPW))
		a.server = &d
	}
	if adminPW != "" {
		d := sha256.Sum256([]byte(adminPW))
		a.admin = &d
	}
	return a
}

func (a authenticator) level(r *http.Request) level {
	token, ok := bearer(r)
	if ok {
		d := sha256.Sum256([]byte(token))
		if a.admin != nil && subtle.ConstantTimeCompare(d[:], a.admin[:]) == 1 {
			return levelAdmin
		}
		if a.server != nil && subtle.ConstantTimeCompare(d[:], a.server[:]) == 1 {
			return levelUser
		}
	}
	if a.server == nil {
		return levelOpen
	}
	return levelNone
}

// bearer returns the token of an `Authorization: Bearer <token>` header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// actorHandler is an endpoint that has passed authentication.
type actorHandler func(w http.ResponseWriter, r *http.Request, a session.Actor)

// user wraps an endpoint that any user may call (with the server password
// when one is set).
func (s *Server) user(h actorHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lv := s.auth.level(r)
		if lv == levelNone {
			unauthorized(w, r, "this server needs a password", "")
			return
		}
		s.withActor(w, r, lv, h)
	})
}

// admin wraps an endpoint that only the admin may call.
func (s *Server) admin(h actorHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lv := s.auth.level(r)
		switch {
		case lv == levelAdmin:
			s.withActor(w, r, lv, h)
		case s.auth.admin == nil:
			writeError(w, http.StatusForbidden, "admin operations are disabled: no admin password is configured"+s.adminHint)
		case lv == levelUser:
			writeError(w, http.StatusForbidden, "this needs the admin password"+s.adminHint)
		default:
			unauthorized(w, r, "this needs the admin password", adminHintFor("")) // no server paths to callers without a password
		}
	})
}

func (s *Server) withActor(w http.ResponseWriter, r *http.Request, lv level, h actorHandler) {
	a := session.Actor{Admin: lv == levelAdmin}
	switch vals := r.Header.Values(userHeader); len(vals) {
	case 0:
	case 1:
		if err := session.ValidUser(vals[0]); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("header %s: %v", userHeader, err))
			return
		}
		a.User = vals[0]
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("header %s given %d times", userHeader, len(vals)))
		return
	}
	h(w, r, a)
}

// adminHintFor says where the admin password comes from, for the errors of
// callers that lack it.
func adminHintFor(file string) string {
	h := " (set it with --admin-password or ADMIN_PASSWORD when starting pitr serve"
	if file != "" {
		h += "; none was set, so this server generated one in " + file
	}
	return h + ")"
}

// unauthorized answers 401, saying whether a password was missing or wrong
// (never echoing it).
func unauthorized(w http.ResponseWriter, r *http.Request, what, hint string) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	if _, ok := bearer(r); ok {
		writeError(w, http.StatusUnauthorized, what+": wrong password"+hint)
		return
	}
	writeError(w, http.StatusUnauthorized, what+": missing Authorization: Bearer <password>"+hint)
}
