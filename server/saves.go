package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/session"
)

// sessionInfo is the body of GET /v1/session.
type sessionInfo struct {
	Session   string        `json:"session"`
	State     session.State `json:"state"`
	NodeCount int           `json:"node_count"`
	Users     []string      `json:"users"`
	LastSave  *saveRef      `json:"last_save"`
	LastError *string       `json:"last_error"`
	// Fenced: another server took over; this one refuses edits.
	Fenced bool `json:"fenced"`
	// SavingSince is when the save running now started, or null.
	SavingSince *time.Time `json:"saving_since"`
	// UnsavedSeconds is the age of the oldest change not yet in a
	// committed save (0 when everything is saved).
	UnsavedSeconds float64 `json:"unsaved_seconds"`
}

type saveRef struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
}

func (s *Server) info() sessionInfo {
	st := s.saver.Status()
	in := sessionInfo{
		Session:   s.cfg.SessionName,
		State:     s.sess.State(),
		NodeCount: s.sess.NodeCount(),
		Users:     s.sess.Users(),
		Fenced:    s.sess.Fenced() != "",
	}
	if in.Users == nil {
		in.Users = []string{}
	}
	if st.LastSave != nil {
		in.LastSave = &saveRef{ID: st.LastSave.ID, Time: st.LastSave.Time.UTC(), Reason: st.LastSave.Reason}
	}
	if st.UnsavedSince != nil {
		in.UnsavedSeconds = max(0, s.cfg.Clock.Since(*st.UnsavedSince).Seconds())
	}
	if st.SavingSince != nil {
		t := st.SavingSince.UTC()
		in.SavingSince = &t
	}
	switch {
	case st.LastError != "":
		in.LastError = &st.LastError
	case st.Warning != "": // a save stuck for longer than the threshold
		in.LastError = &st.Warning
	case st.LocalError != "":
		msg := "local data dir: " + st.LocalError + " (saves still reach the store)"
		in.LastError = &msg
	}
	return in
}

func (s *Server) getSession(w http.ResponseWriter, _ *http.Request, _ session.Actor) {
	writeJSON(w, http.StatusOK, s.info())
}

// initSession moves the session from waiting to active and answers like
// GET /v1/session.
func (s *Server) initSession(w http.ResponseWriter, r *http.Request, _ session.Actor) {
	if err := s.sess.Init(); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("session initialized", slog.String("session", s.cfg.SessionName))
	writeJSON(w, http.StatusOK, s.info())
}

// postSave saves now (reason "api") and answers the save's Result. A failed
// save answers 503 naming the failure.
func (s *Server) postSave(w http.ResponseWriter, r *http.Request, _ session.Actor) {
	res, err := s.saver.Save(r.Context(), ReasonAPI)
	if err != nil {
		s.log.Warn("save requested over the API failed", slog.String("error", err.Error()))
		writeError(w, http.StatusServiceUnavailable, "save failed: "+err.Error())
		return
	}
	res.Time = res.Time.UTC()
	writeJSON(w, http.StatusOK, res)
}

// listSaves answers the session's saves, oldest first, as `pitr saves
// --json` prints them. A store failure answers 503.
func (s *Server) listSaves(w http.ResponseWriter, r *http.Request, _ session.Actor) {
	saves, err := s.saver.Saves(r.Context())
	if err != nil {
		s.log.Warn("list saves failed", slog.String("error", err.Error()))
		writeError(w, http.StatusServiceUnavailable, "list saves: "+err.Error())
		return
	}
	out := make([]replicate.SaveSummary, len(saves))
	for i, sv := range saves {
		sv.Time = sv.Time.UTC()
		out[i] = sv
	}
	writeJSON(w, http.StatusOK, out)
}
