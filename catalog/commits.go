package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// claimCommits is the part of the claim object (claim.Record) that records
// which saves were committed: a save is committed by a conditional write of
// the claim naming it (last_save) after its manifest is stored, and the
// history keeps, for each ended generation, the last save it committed.
type claimCommits struct {
	Generation uint64 `json:"generation"`
	LastSave   string `json:"last_save"`
	History    []struct {
		Generation uint64 `json:"generation"`
		LastSave   string `json:"last_save"`
	} `json:"history"`
}

// Commits tells committed saves from manifests a fenced writer stored
// after it lost the session's writer claim. The zero value (and nil)
// accepts every manifest: a session without a claim.
type Commits struct {
	gen  uint64
	last string            // newest save committed by generation gen
	eras map[uint64]string // ended generation → last save it committed
}

// LoadCommits reads the session's claim. A missing or unreadable claim gives
// nil, which accepts every manifest (the claim is not where saves live; an
// unreadable one must not hide them).
func LoadCommits(ctx context.Context, st store.Store, session string) (*Commits, error) {
	b, err := st.Get(ctx, manifest.ClaimKey(session))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read writer claim of session %q: %w", session, err)
	}
	var cc claimCommits
	if json.Unmarshal(b, &cc) != nil || cc.Generation == 0 {
		return nil, nil
	}
	c := &Commits{gen: cc.Generation, last: cc.LastSave, eras: make(map[uint64]string, len(cc.History))}
	for _, e := range cc.History {
		if e.Generation < cc.Generation {
			c.eras[e.Generation] = e.LastSave
		}
	}
	return c, nil
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
// a fenced writer. Generations older than the claim's history are accepted.
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
