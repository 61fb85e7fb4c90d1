package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/store"
)

// Acquire takes the writer claim of session in st, as the package comment
// describes, and renews it in the background until Release (or Abandon).
// While another server's claim is watched it logs that it waits, and for
// how long at most. It fails with an error wrapping ErrHeld, naming the
// holder's host, when that server turns out to be alive; with the store's
// error when the store refuses access; and with ctx's error when ctx ends.
// A store that cannot be reached is retried until ctx ends.
func Acquire(ctx context.Context, st store.Store, session string, opts Options) (*Claim, error) {
	opts.defaults()
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	a := &acquirer{st: st, key: Key(session), session: session, opts: opts,
		me: Holder{Host: opts.Host, PID: opts.PID, ID: randomHex(12)}, start: opts.Clock.Now()}
	for {
		c, wait, err := a.step(ctx)
		if c != nil || err != nil {
			return c, err
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
			case <-a.opts.Clock.After(wait):
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("acquire writer claim %s in %s: %w", a.key, st, err)
		}
	}
}

// acquirer is the state of one Acquire.
type acquirer struct {
	st      store.Store
	key     string
	session string
	opts    Options
	me      Holder
	start   time.Time

	// The other server's claim being watched: its ETag and when this
	// server first read it.
	watchTag   string
	watchSince time.Time

	// The last write attempted, for when its answer was lost.
	how  string
	prev *Holder

	errSince  time.Time // start of a run of store failures
	errLogged time.Time
	errWaits  *backoff.Delays // waits between attempts on a failing store
}

// step reads the claim and acts on it once: it returns the claim when it
// is ours, an error when Acquire must fail, or how long to wait before the
// next step.
func (a *acquirer) step(ctx context.Context) (*Claim, time.Duration, error) {
	data, info, err := a.st.GetWithInfo(ctx, a.key)
	var cur *Record
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return a.failed(err)
	default:
		var derr error
		if cur, derr = decode(data); derr != nil {
			if !a.opts.Takeover {
				return nil, 0, fmt.Errorf("%w: %s in %s: %w", ErrUnreadable, a.key, a.st, derr)
			}
			return a.write(ctx, nil, info.ETag, HowReplaced)
		}
	}
	if !a.errSince.IsZero() {
		a.opts.Logger.Info("the store answers again", slog.String("session", a.session))
	}
	a.errSince, a.errWaits = time.Time{}, nil
	now := a.opts.Clock.Now()
	switch {
	case cur == nil:
		return a.write(ctx, nil, "", HowNew)
	case cur.Holder.ID == a.me.ID && !cur.Released:
		// Our write landed although its answer was lost.
		return a.claim(cur, info.ETag), 0, nil
	case cur.Released:
		return a.write(ctx, cur, info.ETag, HowReleased)
	case a.opts.Takeover:
		return a.write(ctx, cur, info.ETag, HowTakeover)
	}
	ttl := cur.TTL(a.opts.TTL)
	if info.ETag != a.watchTag {
		if a.watchTag != "" {
			return nil, 0, fmt.Errorf("%w: session %s is being saved by %s, which renewed its claim while this server waited (generation %d, held since %s)",
				ErrHeld, a.session, cur.Holder, cur.Generation, cur.AcquiredAt.Format(time.RFC3339))
		}
		a.watchTag, a.watchSince = info.ETag, now
		upTo := min(ttl, max(ttl/2, cur.RenewedAt.Add(ttl).Sub(now))).Round(time.Second / 10)
		a.opts.Logger.Warn(fmt.Sprintf("waiting for the claim of %s to lapse (up to %s): a server holds session %s; this one refuses to start if that server renews its claim, and takes over if it does not",
			cur.Holder.Host, upTo, a.session),
			slog.String("session", a.session), slog.String("holder_host", cur.Holder.Host), slog.Int("holder_pid", cur.Holder.PID),
			slog.Uint64("generation", cur.Generation), slog.Time("renewed_at", cur.RenewedAt), slog.Duration("up_to", upTo))
		return nil, backoff.Jitter(a.opts.Poll), nil // servers waiting on one claim do not poll in step
	}
	if lapsed(cur, ttl, now.Sub(a.watchSince), now) {
		return a.write(ctx, cur, info.ETag, HowLapsed)
	}
	return nil, backoff.Jitter(a.opts.Poll), nil
}

// lapsed decides whether a claim unchanged for watched (on our clock) has
// lapsed: after a whole TTL, whatever the clocks; or, once watched for half
// a TTL — longer than the holder's renewal period of TTL/3 — as soon as
// the holder's own renewed_at is a TTL old by our clock. The second rule
// only makes a takeover sooner when the clocks roughly agree; a clock far
// ahead cannot make it steal a live claim, since a live holder renews
// within any half TTL watched.
func lapsed(cur *Record, ttl, watched time.Duration, now time.Time) bool {
	if watched >= ttl {
		return true
	}
	return watched >= ttl/2 && !now.Before(cur.RenewedAt.Add(ttl))
}

// write tries to make the claim ours with a conditional write: If-None-Match
// without an ETag, else If-Match on it. A lost condition reads again at
// once; another failure is retried (the next read shows whether the write
// landed).
func (a *acquirer) write(ctx context.Context, cur *Record, etag, how string) (*Claim, time.Duration, error) {
	now := a.opts.Clock.Now().UTC()
	rec := next(cur, a.session, a.me, how, now, a.opts.TTL)
	data, err := rec.encode()
	if err != nil {
		return nil, 0, fmt.Errorf("writer claim %s: encode: %w", a.key, err)
	}
	a.how, a.prev = how, nil
	if cur != nil {
		h := cur.Holder
		a.prev = &h
	}
	cond := store.Condition{IfNoneMatch: true}
	if etag != "" {
		cond = store.Condition{IfMatch: etag}
	}
	tag, err := a.st.PutIf(ctx, a.key, data, cond)
	switch {
	case err == nil:
		return a.claim(rec, tag), 0, nil
	case errors.Is(err, store.ErrPreconditionFailed):
		return nil, 0, nil // another server wrote first: look again
	}
	return a.failed(err)
}

// failed handles a store error: fatal if permanent (access denied, bad
// credentials: retrying cannot help), else retried with backoff from Poll up
// to TTL/6 for as long as ctx lasts — a store that is down does not stop a
// server, it waits for it (logging the failure once per TTL).
func (a *acquirer) failed(err error) (*Claim, time.Duration, error) {
	if store.IsPermanent(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil, 0, fmt.Errorf("acquire writer claim: %w", err)
	}
	now := a.opts.Clock.Now()
	if a.errSince.IsZero() || now.Sub(a.errLogged) >= a.opts.TTL {
		if a.errSince.IsZero() {
			a.errSince = now
		}
		a.errLogged = now
		a.opts.Logger.Warn("cannot reach the store to take the writer claim; retrying until it answers",
			slog.String("session", a.session), slog.Duration("failing_for", now.Sub(a.errSince).Round(time.Second)),
			slog.String("error", err.Error()))
	}
	if a.errWaits == nil {
		a.errWaits = backoff.Policy{Min: min(a.opts.Poll, a.opts.TTL/6), Max: a.opts.TTL / 6}.Delays()
	}
	return nil, a.errWaits.Next(), nil
}

// claim returns the held claim and starts renewing it.
func (a *acquirer) claim(rec *Record, etag string) *Claim {
	c := &Claim{st: a.st, key: a.key, session: a.session, opts: a.opts, how: a.how, prev: a.prev,
		rec: rec, etag: etag, stop: make(chan struct{}), done: make(chan struct{})}
	if !a.watchSince.IsZero() {
		c.waited = a.opts.Clock.Now().Sub(a.start)
	}
	go c.renewLoop()
	return c
}
