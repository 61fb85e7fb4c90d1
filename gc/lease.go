package gc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
)

// LeaseKey is the object a gc run holds while it changes the store: at
// most one gc at a time deletes packs, writes forward records or sweeps.
const LeaseKey = chunksPrefix + "gc-lease.json"

// LeaseTTL is how long a lease lasts unless renewed; a run renews it when
// half of it is left, before each step that deletes or moves data. A run
// that crashed blocks others until its lease expires.
const LeaseTTL = time.Hour

// ErrLeaseHeld: another gc run holds the store's gc lease.
var ErrLeaseHeld = errors.New("another gc holds the store's gc lease")

// ErrLeaseLost: the run's lease was taken over (it stalled past its
// expiry); the run stops before changing anything more.
var ErrLeaseLost = errors.New("gc lease lost")

type leaseRecord struct {
	Holder  string    `json:"holder"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
}

// lease is a held gc lease.
type lease struct {
	st   store.Store
	clk  clock.Clock
	rec  leaseRecord
	etag string
}

// acquireLease takes the store's gc lease, or takes over an expired one.
func acquireLease(ctx context.Context, st store.Store, clk clock.Clock) (*lease, error) {
	host, _ := os.Hostname()
	var id [8]byte
	_, _ = rand.Read(id[:])
	l := &lease{st: st, clk: clk, rec: leaseRecord{Holder: fmt.Sprintf("%s pid %d", host, os.Getpid()), ID: hex.EncodeToString(id[:])}}
	cond := store.Condition{IfNoneMatch: true}
	body, info, err := st.GetWithInfo(ctx, LeaseKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read gc lease %s: %w", LeaseKey, err)
	default:
		var cur leaseRecord
		if err := json.Unmarshal(body, &cur); err == nil && clk.Now().Before(cur.Expires) {
			return nil, fmt.Errorf("%w: %s, until %s", ErrLeaseHeld, cur.Holder, cur.Expires.UTC().Format(time.RFC3339))
		}
		cond = store.Condition{IfMatch: info.ETag} // expired or unreadable: take it over
	}
	if err := l.write(ctx, cond); err != nil {
		if errors.Is(err, store.ErrPreconditionFailed) {
			return nil, fmt.Errorf("%w: taken at the same moment", ErrLeaseHeld)
		}
		return nil, err
	}
	return l, nil
}

func (l *lease) write(ctx context.Context, cond store.Condition) error {
	rec := l.rec
	rec.Expires = l.clk.Now().Add(LeaseTTL)
	body, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode gc lease: %w", err)
	}
	etag, err := l.st.PutIf(ctx, LeaseKey, body, cond)
	if err != nil {
		return fmt.Errorf("write gc lease %s: %w", LeaseKey, err)
	}
	l.rec, l.etag = rec, etag
	return nil
}

// check makes sure the lease lasts at least half its TTL more, renewing
// it if not; it is called before each step that changes the store.
func (l *lease) check(ctx context.Context) error {
	if l == nil {
		return nil // a dry run holds no lease
	}
	if l.clk.Now().Before(l.rec.Expires.Add(-LeaseTTL / 2)) {
		return nil
	}
	if !l.clk.Now().Before(l.rec.Expires) {
		return fmt.Errorf("%w: it expired at %s", ErrLeaseLost, l.rec.Expires.UTC().Format(time.RFC3339))
	}
	if err := l.write(ctx, store.Condition{IfMatch: l.etag}); err != nil {
		if errors.Is(err, store.ErrPreconditionFailed) {
			return fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
		return err
	}
	return nil
}

// release gives the lease up, if it is still this run's.
func (l *lease) release(ctx context.Context) {
	if l == nil {
		return
	}
	if info, err := l.st.Stat(ctx, LeaseKey); err == nil && info.ETag == l.etag {
		_ = l.st.Delete(ctx, LeaseKey) // an expired lease is taken over anyway
	}
}
