// Package server owns pitr's HTTP API: the JSON endpoints of `pitr serve`
// (session, nodes, saves), Server-Sent Events presence (a user is online while
// their event stream is open), bearer-password authentication, and the
// mapping of session errors to HTTP statuses. It sits on top of package
// session and talks to the saver only through the small Saver interface; it
// knows nothing of stores, chunks or manifests.
//
// Authentication (header `Authorization: Bearer <password>`, compared in
// constant time):
//   - the admin password grants everything;
//   - the server password grants user operations; with no server password
//     configured user operations are open to anyone, and a bearer matching
//     neither password is then simply treated as an anonymous user;
//   - admin-only endpoints are POST /v1/session/init and POST /v1/saves
//     (putting nodes while the session is waiting is refused by the session
//     itself with 403). Without admin rights they answer 401 (with
//     `WWW-Authenticate: Bearer`) when no valid password was presented, and
//     403 when the caller presented the server password. With no admin
//     password configured nobody is admin and they always answer 403;
//   - GET /healthz and GET /metrics are open; GET /v1/saves is a user
//     operation.
//
// The caller's user name comes from the optional header X-Pitr-User (a
// malformed name is a 400). The event stream's user comes from its `user`
// query parameter.
//
// Responses are JSON; errors are `{"error": "..."}` with statuses 400
// (malformed input, named), 401, 403, 404, 405, 409, 413 (node data over
// Config.MaxNodeBytes), 503 (a save or the save listing failed) and 500
// (a bug: logged, and a save with reason internal_error is requested).
// Unclean paths get 404, never a redirect. PUT and owner changes answer the
// node without data; DELETE answers {"id", "deleted": true}; POST
// /v1/session/init answers like GET /v1/session. POST /v1/nodes/{id}/owner
// requires the "owner" field.
//
// Event stream: first `event: hello` (session, user, state, users,
// node_count), then every session.Event as `id: <seq>`, `event: <type>`,
// `data: <event JSON>`, and a `: keep-alive` comment every Heartbeat.
// Last-Event-ID is not replayed: a reconnecting client reloads.
//
// Shutdown: event streams never end on their own, so call (*Server).Close
// when stopping, typically via http.Server.RegisterOnShutdown(srv.Close);
// it ends every open stream (each user then leaves the session as on a
// disconnect) so that http.Server.Shutdown returns.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
)

// Saver is what the server needs from the saver (package replicate).
type Saver interface {
	// Save saves now and returns after the manifest is stored, or with
	// Result.Unchanged set when nothing changed since the last save.
	Save(ctx context.Context, reason string) (replicate.Result, error)
	// Request asks for a save soon with reason, without waiting for it.
	Request(reason string)
	// Status reports the last save and the last error.
	Status() replicate.Status
	// Saves lists the session's saves, oldest first.
	Saves(ctx context.Context) ([]replicate.SaveSummary, error)
}

// Config configures a Server.
type Config struct {
	SessionName    string
	ServerPassword string // "" leaves user operations open
	AdminPassword  string // "" means nobody is admin: admin-only endpoints answer 403
	// AdminPasswordFile is where serve generated the admin password, if it
	// did; errors for callers lacking it name the file.
	AdminPasswordFile string
	MaxNodeBytes      int64 // largest node data accepted; 0 means DefaultMaxNodeBytes
	// MaxInflightBytes bounds the request bodies being received at once
	// (see limitBodies); 0 means DefaultMaxInflightBytes(MaxNodeBytes).
	MaxInflightBytes int64
	// BodyReadTimeout ends a request whose body sends nothing for this
	// long; 0 means DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	Logger          *slog.Logger
	// Metrics is served at GET /metrics (built by the caller, e.g. with
	// promhttp from its registry); nil answers 404.
	Metrics http.Handler
	// History reads past saves for POST /v1/nodes/{id}/revert; nil
	// answers 501.
	History History
	// Clock stamps request durations and unsaved ages and paces the event
	// streams' heartbeats; nil is the wall clock.
	Clock clock.Clock
}

// Defaults.
const (
	DefaultMaxNodeBytes       = 64 << 20
	DefaultHeartbeat          = 15 * time.Second
	DefaultStreamWriteTimeout = 30 * time.Second
)

// Reasons the server passes to Saver.Request.
const (
	ReasonInternalError  = "internal_error"
	ReasonUserDisconnect = "user_disconnect:" // followed by the user name
	ReasonAPI            = "api"
)

// Server is the HTTP API of `pitr serve`. It implements http.Handler.
type Server struct {
	// Heartbeat is the interval of the comment lines sent on idle event
	// streams (default DefaultHeartbeat). Set it before serving.
	Heartbeat time.Duration
	// StreamWriteTimeout bounds each write to an event stream: a client
	// that stops reading for this long is disconnected (default
	// DefaultStreamWriteTimeout). Set it before serving.
	StreamWriteTimeout time.Duration

	sess  *session.Session
	saver Saver
	cfg   Config
	log   *slog.Logger
	auth  authenticator
	// adminHint ends the errors of callers that lack the admin password.
	adminHint string
	mux       *http.ServeMux
	handler   http.Handler

	ctx    context.Context // cancelled by Close: ends every event stream
	cancel context.CancelFunc
}

// New returns a Server serving sess. saver must not be nil.
func New(sess *session.Session, saver Saver, cfg Config) *Server {
	if cfg.MaxNodeBytes <= 0 {
		cfg.MaxNodeBytes = DefaultMaxNodeBytes
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes(cfg.MaxNodeBytes)
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Heartbeat:          DefaultHeartbeat,
		StreamWriteTimeout: DefaultStreamWriteTimeout,
		sess:               sess,
		saver:              saver,
		cfg:                cfg,
		log:                log,
		auth:               newAuthenticator(cfg.ServerPassword, cfg.AdminPassword),
		adminHint:          adminHintFor(cfg.AdminPasswordFile),
		mux:                http.NewServeMux(),
		ctx:                ctx,
		cancel:             cancel,
	}
	s.routes()
	s.handler = s.accessLog(s.limitBodies(s.recoverPanics(http.HandlerFunc(s.route))))
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.Handle("GET /v1/session", s.user(s.getSession))
	s.mux.Handle("POST /v1/session/init", s.admin(s.initSession))
	s.mux.Handle("GET /v1/nodes", s.user(s.listNodes))
	s.mux.Handle("PUT /v1/nodes/{id}", s.user(s.putNode))
	s.mux.Handle("GET /v1/nodes/{id}", s.user(s.getNode))
	s.mux.Handle("DELETE /v1/nodes/{id}", s.user(s.deleteNode))
	s.mux.Handle("POST /v1/nodes/{id}/owner", s.user(s.setOwner))
	s.mux.Handle("POST /v1/nodes/{id}/revert", s.user(s.revertNode))
	s.mux.Handle("GET /v1/events", s.user(s.events))
	s.mux.Handle("POST /v1/saves", s.admin(s.postSave))
	s.mux.Handle("GET /v1/saves", s.user(s.listSaves))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Close ends every open event stream (their users leave the session as on a
// disconnect) and refuses new ones with 503. Other requests are still
// served. Safe to call more than once.
func (s *Server) Close() { s.cancel() }

// route dispatches to the mux, answering unknown paths and methods with
// JSON errors instead of the mux's plain-text ones.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	r, ok := canonical(r)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	rec := &headerRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
}

// canonical refuses (ok false) paths the mux would redirect to a cleaned
// form: an API client wants a 404, not a redirect. The node ids "." and
// "..", which are valid, are escaped so that they reach their handlers.
func canonical(r *http.Request) (_ *http.Request, ok bool) {
	segs := strings.Split(r.URL.EscapedPath(), "/")
	if len(segs) < 2 || segs[0] != "" {
		return r, false
	}
	changed := false
	for i := 1; i < len(segs); i++ {
		switch segs[i] {
		case "":
			if i != len(segs)-1 { // "//"; a trailing slash is left to the mux
				return r, false
			}
		case ".", "..":
			if i != 3 || segs[1] != "v1" || segs[2] != "nodes" {
				return r, false
			}
			segs[i] = strings.ReplaceAll(segs[i], ".", "%2E")
			changed = true
		}
	}
	if !changed {
		return r, true
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawPath = strings.Join(segs, "/")
	r2.URL = &u
	return r2, true
}

// headerRecorder captures the status and headers of the mux's error
// handlers, discarding their body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

// statusWriter records what a handler wrote, for the access log and for the
// panic handler (which may only answer if nothing was written yet).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(status int) {
	if sw.status == 0 {
		sw.status = status
	}
	sw.ResponseWriter.WriteHeader(status)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(b)
	sw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// accessLog logs every request at debug level. It never logs headers (so no
// Authorization) nor the query string.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Clock.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "http request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", sw.status),
				slog.Int64("bytes", sw.bytes),
				slog.Duration("duration", s.cfg.Clock.Since(start)),
				slog.String("remote", r.RemoteAddr),
				slog.String("user", r.Header.Get(userHeader)),
			)
		}()
		next.ServeHTTP(sw, r)
	})
}

// recoverPanics turns a handler panic into a logged 500 and asks the saver
// for a save (reason internal_error), so the state survives whatever broke.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
				panic(v)
			}
			s.log.Error("panic in http handler",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())),
			)
			s.saver.Request(ReasonInternalError)
			if sw.status == 0 {
				writeError(sw, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(sw, r)
	})
}
