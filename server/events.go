package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/session"
)

// EventHello is the first event of every stream: the session as the client
// joins it. Every later event is a session.Event (its Type as the SSE event
// name, its Seq as the SSE id). Clients that reconnect reload from the API;
// Last-Event-ID is not replayed.
const EventHello = "hello"

// hello is the data of the hello event.
type hello struct {
	Session   string        `json:"session"`
	User      string        `json:"user"`
	State     session.State `json:"state"`
	Users     []string      `json:"users"`
	NodeCount int           `json:"node_count"`
}

// events serves GET /v1/events?user=NAME: NAME is online while the stream
// is open. When it ends (client gone, subscription dropped for reading too
// slowly, or Close), NAME leaves; if that returned nodes to COMMON the saver
// is asked for a save with reason user_disconnect:NAME.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ session.Actor) {
	users := r.URL.Query()["user"]
	if len(users) != 1 {
		s.fail(w, r, badRequest("query parameter user is required, exactly once: /v1/events?user=NAME"))
		return
	}
	user := users[0]
	if err := session.ValidUser(user); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.ctx.Err() != nil {
		writeError(w, http.StatusServiceUnavailable, "server is shutting down")
		return
	}
	// Subscribe before joining so the stream holds the user's own join and
	// nothing between the two is missed.
	sub := s.sess.Subscribe()
	if err := s.sess.Join(user); err != nil {
		sub.Close()
		s.fail(w, r, err)
		return
	}
	s.log.Info("user joined", slog.String("user", user))
	defer s.leave(user, sub)

	rc := http.NewResponseController(w)
	// A stream outlives any server-wide read or write timeout: clear the
	// read deadline (defensive: the connection is only watched for the
	// client going away) and bound each write instead.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	st := stream{w: w, rc: rc, timeout: s.StreamWriteTimeout}
	if st.timeout <= 0 {
		st.timeout = DefaultStreamWriteTimeout
	}
	users = s.sess.Users()
	if users == nil {
		users = []string{}
	}
	hi := hello{Session: s.cfg.SessionName, User: user, State: s.sess.State(),
		Users: users, NodeCount: s.sess.NodeCount()}
	if err := st.event("", EventHello, hi); err != nil {
		_ = rc.SetWriteDeadline(time.Unix(1, 0))
		return
	}
	if s.pump(r, st, sub, user) {
		// Ended by Close (server shutdown): finish the response cleanly, in
		// bounded time; the shutting-down server will not reuse the
		// connection.
		_ = rc.SetWriteDeadline(clock.Deadline(st.timeout))
		return
	}
	// Client gone, too slow, or a write failed: let the response's end fail
	// at once so the connection is closed, never reused with a stale
	// deadline or left blocking on a client that does not read.
	_ = rc.SetWriteDeadline(time.Unix(1, 0))
}

// pump copies events to the stream until it ends. It reports whether the
// stream ended because the server was closed.
func (s *Server) pump(r *http.Request, st stream, sub *session.Subscription, user string) bool {
	every := s.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	beat := s.cfg.Clock.NewTicker(every)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return false
		case <-s.ctx.Done():
			return true
		case e, ok := <-sub.C:
			if !ok {
				s.log.Warn("event stream dropped: client reads too slowly", slog.String("user", user))
				return false
			}
			if err := st.event(fmt.Sprint(e.Seq), e.Type, e); err != nil {
				return false
			}
		case <-beat.Chan():
			if err := st.write(": keep-alive\n\n"); err != nil {
				return false
			}
		}
	}
}

// leave ends user's presence and asks for a save if that changed anything.
func (s *Server) leave(user string, sub *session.Subscription) {
	sub.Close()
	n := s.sess.Leave(user)
	s.log.Info("user left", slog.String("user", user), slog.Int("nodes_returned", n))
	if n > 0 {
		s.saver.Request(ReasonUserDisconnect + user)
	}
}

// stream writes Server-Sent Events, flushing each.
type stream struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (st stream) event(id, typ string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg := "event: " + typ + "\ndata: " + string(data) + "\n\n"
	if id != "" {
		msg = "id: " + id + "\n" + msg
	}
	return st.write(msg)
}

func (st stream) write(msg string) error {
	_ = st.rc.SetWriteDeadline(clock.Deadline(st.timeout)) // unsupported by some writers: fine
	if _, err := io.WriteString(st.w, msg); err != nil {
		return err
	}
	return st.rc.Flush()
}
