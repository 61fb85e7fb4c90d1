package claim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// FormatVersion is the version of the claim object's JSON.
const FormatVersion = 1

// HistoryLen is how many generations the claim object remembers.
const HistoryLen = 50

// How a generation began, recorded in its history entry.
const (
	HowNew      = "new"      // the session had no claim
	HowReleased = "released" // the previous holder released it on a clean stop
	HowLapsed   = "lapsed"   // the previous holder stopped renewing
	HowTakeover = "takeover" // taken from a holder at once (--takeover)
	HowReplaced = "replaced" // an unreadable claim object was replaced (--takeover)
)

// Key returns the key of a session's claim object,
// "sessions/<session>/claim.json".
func Key(session string) string { return manifest.ClaimKey(session) }

// Holder identifies a server process holding a claim.
type Holder struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// ID is random per acquisition: it tells this process's writes from
	// those of another process on the same host with the same pid.
	ID string `json:"id"`
}

func (h Holder) String() string {
	if h.Host == "" {
		return fmt.Sprintf("an unnamed host (pid %d)", h.PID)
	}
	return fmt.Sprintf("%s (pid %d)", h.Host, h.PID)
}

// Era is one generation of the claim in its history.
type Era struct {
	Generation uint64    `json:"generation"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	ID         string    `json:"id"`
	Since      time.Time `json:"since"`
	How        string    `json:"how"`
	// LastSave is the last save this generation committed, filled in when
	// the generation ends (Commits reads it).
	LastSave string `json:"last_save,omitempty"`
}

// Record is the content of the claim object. Times come from the writer's
// clock and are informative: the protocol never compares one host's clock
// with another's for its safety.
type Record struct {
	FormatVersion int    `json:"format_version"`
	Session       string `json:"session"`
	Holder        Holder `json:"holder"`
	// Generation grows by one every time the claim changes hands; the
	// saver records it in every manifest.
	Generation uint64    `json:"generation"`
	AcquiredAt time.Time `json:"acquired_at"`
	RenewedAt  time.Time `json:"renewed_at"`
	// TTLMS is the holder's lease time in milliseconds: it renews the claim
	// at least every third of it, and a claim left unchanged for that long
	// has lapsed.
	TTLMS    int64 `json:"ttl_ms"`
	Released bool  `json:"released"`
	// LastSave is the newest save this generation committed: a save counts
	// only once a conditional write of the claim names it, so a fenced
	// writer can never commit one (Commits).
	LastSave string `json:"last_save,omitempty"`
	// Pinned are packs a save in flight references that neither its own
	// base save nor the saves it uploads hold: a rollback to an older save,
	// or a new session reusing another's chunks. gc keeps them (package
	// gc) until the commit that names them clears the list.
	Pinned []manifest.PackID `json:"pinned,omitempty"`
	// Nonce is random per write, so every write changes the content (and
	// with it an S3 ETag, an MD5 of the content) and a writer can tell its
	// own write when it lost the answer.
	Nonce string `json:"nonce"`
	// History lists the recent generations, oldest first, at most
	// HistoryLen of them.
	History []Era `json:"history"`
}

// TTL returns the record's lease time, or def if it has none.
func (r *Record) TTL(def time.Duration) time.Duration {
	if r.TTLMS <= 0 {
		return def
	}
	return time.Duration(r.TTLMS) * time.Millisecond
}

// next returns the record of a new generation held by h after r (nil: no
// claim object, or an unreadable one).
func next(r *Record, session string, h Holder, how string, now time.Time, ttl time.Duration) *Record {
	n := &Record{FormatVersion: FormatVersion, Session: session, Holder: h, Generation: 1,
		AcquiredAt: now, RenewedAt: now, TTLMS: ttl.Milliseconds()}
	if r != nil {
		n.Generation = r.Generation + 1
		n.History = append(n.History, r.History...)
		for i := range n.History {
			if n.History[i].Generation == r.Generation {
				n.History[i].LastSave = r.LastSave // the ending generation's commits
			}
		}
	}
	n.History = append(n.History, Era{Generation: n.Generation, Host: h.Host, PID: h.PID, ID: h.ID, Since: now, How: how})
	if len(n.History) > HistoryLen {
		n.History = n.History[len(n.History)-HistoryLen:]
	}
	return n
}

// encode returns the JSON of r with a fresh nonce set in it.
func (r *Record) encode() ([]byte, error) {
	r.Nonce = randomHex(8)
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func decode(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	switch {
	case r.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("format version %d is newer than this pitr understands (%d)", r.FormatVersion, FormatVersion)
	case r.FormatVersion < 1:
		return nil, fmt.Errorf("format version %d", r.FormatVersion)
	case r.Generation == 0:
		return nil, fmt.Errorf("generation 0")
	case r.Holder.ID == "":
		return nil, fmt.Errorf("no holder id")
	case r.TTLMS < 0 || r.TTLMS > (24*time.Hour).Milliseconds():
		return nil, fmt.Errorf("implausible ttl_ms %d", r.TTLMS)
	}
	return &r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Live returns the writer claim of session when a server holds it now: not
// released, and renewed within its lease time of now. A session without a
// claim object gives nil; an unreadable one an error wrapping ErrUnreadable.
func Live(ctx context.Context, st store.Store, session string, now time.Time) (*Record, error) {
	b, err := st.Get(ctx, Key(session))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the writer claim of session %s: %w", session, err)
	}
	r, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreadable, Key(session), err)
	}
	if r.Released || now.Sub(r.RenewedAt) >= r.TTL(DefaultTTL) {
		return nil, nil
	}
	return r, nil
}

// Pinned returns the packs the claim of session pins (none when the
// session has no claim). A claim that does not decode is an error: gc must
// not guess.
func Pinned(ctx context.Context, st store.Store, session string) ([]manifest.PackID, error) {
	b, err := st.Get(ctx, Key(session))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read writer claim of session %s: %w", session, err)
	}
	r, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("read writer claim of session %s: %w", session, err)
	}
	return r.Pinned, nil
}
