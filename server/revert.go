package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// History reads single nodes of the session's past saves, for
// POST /v1/nodes/{id}/revert (catalog.History).
type History interface {
	// NodeAt returns node id as of save saveID or, when saveID is "", of
	// the newest committed save at or before at (latest: the newest): the
	// node (nil when the save did not have it) and the save.
	NodeAt(ctx context.Context, id string, at time.Time, latest bool, saveID string) (*session.Node, *manifest.Manifest, error)
}

// revertBody is the body of POST /v1/nodes/{id}/revert: one of the two.
type revertBody struct {
	At   string `json:"at"`   // a time as pitr restore --at takes it (UTC when no zone), or "latest"
	Save string `json:"save"` // a save id
}

// Revert actions.
const (
	RevertPut    = "put"    // the node is put back as it was
	RevertDelete = "delete" // the node did not exist then: it is deleted
	RevertNone   = "none"   // the node is already as it was
)

// revertAnswer says what a revert did (or, dry_run=1, would do).
type revertAnswer struct {
	ID     string            `json:"id"`
	Action string            `json:"action"`
	DryRun bool              `json:"dry_run"`
	Save   revertSave        `json:"save"`
	Before *session.NodeMeta `json:"before"` // the node now (nil: absent)
	After  *session.NodeMeta `json:"after"`  // the node after the revert (nil: absent)
	Size   int               `json:"size"`   // data bytes of the node as it was
}

type revertSave struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// revertNode puts node {id} back as it was in a save, as a new edit of the
// acting user (the ownership rules of a PUT or DELETE apply): the node gets
// a new version and every client an event; a node that did not exist then
// is deleted. ?dry_run=1 answers what would change and changes nothing.
func (s *Server) revertNode(w http.ResponseWriter, r *http.Request, a session.Actor) {
	id, err := nodeID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var b revertBody
	if err := decodeStrict(http.MaxBytesReader(w, r.Body, smallBodyLimit), &b); err != nil {
		s.fail(w, r, err)
		return
	}
	old, m, err := s.lookBack(r.Context(), id, b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cur, err := s.sess.Get(id)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	ans := revertAnswer{ID: id, DryRun: r.URL.Query().Get("dry_run") == "1", Save: revertSave{ID: m.ID, Time: m.Time},
		Before: metaOf(cur), After: metaOf(cur)}
	switch {
	case old == nil && cur == nil, old != nil && cur != nil && sameContent(old, cur):
		ans.Action = RevertNone
	case old == nil:
		ans.Action, ans.After = RevertDelete, nil
	default:
		ans.Action, ans.Size = RevertPut, len(old.Data)
	}
	if ans.DryRun || ans.Action == RevertNone {
		writeJSON(w, http.StatusOK, ans)
		return
	}
	if ans.Action == RevertDelete {
		err = s.sess.Delete(a, id)
	} else {
		var n *session.Node
		n, err = s.sess.Put(a, id, session.NodeInput{Type: old.Type, Owner: old.Owner, Deps: old.Deps, Data: old.Data})
		ans.After = metaOf(n)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("node reverted", slog.String("id", id), slog.String("action", ans.Action),
		slog.String("save_id", m.ID), slog.String("user", a.User))
	writeJSON(w, http.StatusOK, ans)
}

// lookBack reads node id as of the save b names.
func (s *Server) lookBack(ctx context.Context, id string, b revertBody) (*session.Node, *manifest.Manifest, error) {
	if s.cfg.History == nil {
		return nil, nil, &requestError{status: http.StatusNotImplemented, msg: "this server has no store to look back in"}
	}
	var at time.Time
	var latest bool
	switch {
	case (b.At == "") == (b.Save == ""):
		return nil, nil, badRequest(`give one of "at" (a time, or "latest") and "save" (a save id)`)
	case b.Save != "":
		if _, err := manifest.IDTime(b.Save); err != nil {
			return nil, nil, badRequest(`field "save": %v`, err)
		}
	default:
		var err error
		if at, latest, err = manifest.ParseAt(b.At, time.UTC); err != nil {
			return nil, nil, badRequest(`field "at": %v`, err)
		}
	}
	n, m, err := s.cfg.History.NodeAt(ctx, id, at, latest, b.Save)
	switch {
	case errors.Is(err, manifest.ErrNoSaves), errors.Is(err, manifest.ErrNoneBefore), errors.Is(err, manifest.ErrNoSuchSave):
		return nil, nil, &requestError{status: http.StatusNotFound, msg: err.Error()}
	case err != nil:
		return nil, nil, &requestError{status: http.StatusBadGateway, msg: fmt.Sprintf("read the save from the store: %v", err)}
	}
	return n, m, nil
}

func metaOf(n *session.Node) *session.NodeMeta {
	if n == nil {
		return nil
	}
	m := n.Meta()
	return &m
}

// sameContent reports whether two versions of a node hold the same thing.
func sameContent(a, b *session.Node) bool {
	if a.Type != b.Type || a.Owner != b.Owner || len(a.Deps) != len(b.Deps) || string(a.Data) != string(b.Data) {
		return false
	}
	for i := range a.Deps {
		if a.Deps[i] != b.Deps[i] {
			return false
		}
	}
	return true
}
