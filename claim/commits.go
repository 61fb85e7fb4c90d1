package claim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// Commits is the commit record a claim keeps: which stored manifests are
// committed saves, and which were stored by a fenced writer after it lost
// the claim (or are a save still in flight). A save is committed by a
// conditional write of the claim naming it (Record.LastSave, Claim.Commit)
// after its manifest is stored; when a generation ends, its history entry
// keeps the last save it committed (Era.LastSave).
//
// The zero value (and nil) accepts every manifest: a session without a
// claim. Catalog reads through it (package catalog lists only committed
// saves); retention keeps LastCommitted whatever its policy says.
type Commits struct {
	gen  uint64
	last string            // newest save committed by generation gen
	eras map[uint64]string // ended generation → last save it committed
}

// Commits returns the commit record of r. A nil record, or one of
// generation 0, gives nil, which accepts every manifest.
func (r *Record) Commits() *Commits {
	if r == nil {
		return nil
	}
	f := commitFields{Generation: r.Generation, LastSave: r.LastSave}
	for _, e := range r.History {
		f.History = append(f.History, eraCommit{Generation: e.Generation, LastSave: e.LastSave})
	}
	return f.commits()
}

// commitFields are the fields of a Record (same JSON names) that make its
// commit record. ReadCommits decodes only these, so that a claim whose
// other fields do not parse (a newer writer's, a damaged one) still tells
// committed saves from a fenced writer's.
type commitFields struct {
	Generation uint64      `json:"generation"`
	LastSave   string      `json:"last_save"`
	History    []eraCommit `json:"history"`
}

type eraCommit struct {
	Generation uint64 `json:"generation"`
	LastSave   string `json:"last_save"`
}

func (f commitFields) commits() *Commits {
	if f.Generation == 0 {
		return nil
	}
	c := &Commits{gen: f.Generation, last: f.LastSave, eras: make(map[uint64]string, len(f.History))}
	for _, e := range f.History {
		if e.Generation < f.Generation {
			c.eras[e.Generation] = e.LastSave
		}
	}
	return c
}

// ReadCommits reads the commit record of session's claim from st. A
// missing claim, or one whose generation, last_save and history do not
// parse, gives nil, which accepts every manifest: the claim is not where
// saves live, and an unreadable one must not hide them. Only those fields
// are decoded; the rest of the record is not looked at (unlike Acquire,
// which refuses a claim it cannot fully read). A store error is returned,
// wrapped.
func ReadCommits(ctx context.Context, st store.Store, session string) (*Commits, error) {
	b, err := st.Get(ctx, Key(session))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read writer claim of session %q: %w", session, err)
	}
	var f commitFields
	if json.Unmarshal(b, &f) != nil {
		return nil, nil
	}
	return f.commits(), nil
}

// LastCommitted returns the id of the newest save the claim's current
// generation committed ("" if none, or without a claim).
func (c *Commits) LastCommitted() string {
	if c == nil {
		return ""
	}
	return c.last
}

// Committed reports whether m is a committed save: written without a claim
// (generation 0), or named at or before the last save its generation
// committed. A manifest of the current generation newer than its last
// commit is in flight (or its writer died before committing); one of an
// ended generation newer than that generation's last commit was stored by
// a fenced writer. Generations older than the claim's history, and newer
// than the claim's, are accepted.
func (c *Commits) Committed(m *manifest.Manifest) bool {
	g := m.Writer.Generation
	if c == nil || g == 0 || g > c.gen {
		return true
	}
	last := c.last
	if g < c.gen {
		l, ok := c.eras[g]
		if !ok {
			return true
		}
		last = l
	}
	return last != "" && !idAfter(m.ID, last)
}

// idAfter reports whether save id a sorts after save id b (by time, then id).
func idAfter(a, b string) bool {
	ta, errA := manifest.IDTime(a)
	tb, errB := manifest.IDTime(b)
	if errA != nil || errB != nil || ta.Equal(tb) {
		return a > b
	}
	return ta.After(tb)
}
