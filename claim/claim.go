// Package claim is the writer claim (a lease) that makes one server at a
// time the writer of a session: the object sessions/<session>/claim.json,
// taken and renewed with conditional writes of the store itself
// (store.Store.PutIf: If-None-Match / If-Match), never with local state.
//
// The protocol, for a server starting on a session:
//
//   - No claim object: create it with If-None-Match, generation 1.
//   - A released claim (a clean stop): replace it with If-Match on the ETag
//     just read, generation+1.
//   - A claim held by another server: with Options.Takeover, replace it
//     with If-Match at once, generation+1. Otherwise watch it: a holder
//     renews every third of its TTL, and every write changes the ETag. If
//     the ETag changes, the holder is alive and Acquire fails with ErrHeld
//     naming its host. If it stays unchanged for a whole TTL measured on
//     this server's clock (or, once this server has watched for half a TTL,
//     more than a renewal period, until the holder's own renewed_at plus
//     TTL has passed by this server's clock), the holder is gone and the
//     claim is replaced with If-Match, generation+1.
//   - A lost conditional write (another server was faster) starts over
//     with a fresh read.
//
// Times decide only when to stop waiting, never safety: whatever the
// clocks say, a takeover is a conditional write, and the old holder learns
// it at its next conditional write. The holder renews in the background
// every third of the TTL, and Fence, called by the saver right before every
// manifest, renews too: a claim replaced since the last renewal fails
// there with an error wrapping ErrFenced, and the old holder
// stops saving. Only a lost precondition fences; a store that cannot be
// reached is not evidence that another server took over, and the next
// conditional write that gets through tells the truth. Release marks the
// claim released, so the next server takes it at once.
//
// The claim is also the commit record of the session's saves: Commit names
// a save in the claim once its manifest is stored, and Commits (read with
// ReadCommits) tells readers the committed saves from those a fenced
// writer stored or a save still in flight.
package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// DefaultTTL is the lease time: a claim unchanged for this long has lapsed.
const DefaultTTL = 30 * time.Second

// Errors of Acquire.
var (
	// ErrHeld means another live server holds the session's claim.
	ErrHeld = errors.New("writer claim held by another server")
	// ErrUnreadable means the claim object is not a claim this pitr can
	// read; only a takeover replaces it.
	ErrUnreadable = errors.New("writer claim unreadable")
)

// Options configure Acquire.
type Options struct {
	// Takeover replaces a claim held by another server at once.
	Takeover bool
	// TTL is the lease time (default DefaultTTL); the claim is renewed
	// every TTL/3.
	TTL time.Duration
	// Poll is how often a claim held by another server is read while
	// waiting (default TTL/30, at most 1s).
	Poll time.Duration
	// Host and PID identify this server in the claim (default the host
	// name and the process id).
	Host string
	PID  int
	// Clock is the time source: when to renew, how long to watch another
	// server's claim, and the times the claim records (default the wall
	// clock; tests pass a clock.Fake).
	Clock clock.Clock
	// Logger receives the waiting and renewal messages (default
	// slog.Default()).
	Logger *slog.Logger
	// OnFenced, when set, is called once (in its own goroutine) when a
	// renewal or Fence finds that another server took over.
	OnFenced func(error)
}

func (o *Options) defaults() {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Poll <= 0 {
		o.Poll = min(o.TTL/30, time.Second)
	}
	o.Clock = clock.Or(o.Clock)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Claim is a held writer claim. Its methods are safe for concurrent use.
type Claim struct {
	st      store.Store
	key     string
	session string
	opts    Options
	how     string
	prev    *Holder // the holder before us, if any
	waited  time.Duration

	mu       sync.Mutex // serializes the claim's writes; guards the fields below
	rec      *Record
	etag     string
	fenced   error // non-nil once another server took over
	released bool

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// Generation returns the generation this server holds.
func (c *Claim) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Generation
}

// How says how the claim was taken: HowNew, HowReleased, HowLapsed,
// HowTakeover or HowReplaced.
func (c *Claim) How() string { return c.how }

// Previous returns the server that held the claim before, if any.
func (c *Claim) Previous() (Holder, bool) {
	if c.prev == nil {
		return Holder{}, false
	}
	return *c.prev, true
}

// Waited returns how long Acquire waited for another server's claim.
func (c *Claim) Waited() time.Duration { return c.waited }

// Holder returns this server's identity in the claim.
func (c *Claim) Holder() Holder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Holder
}

// Fenced returns the error wrapping ErrFenced once another server
// has taken the claim over, else nil.
func (c *Claim) Fenced() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fenced
}

// Fence confirms, with a conditional write of the claim object, that this
// server still holds the claim, and returns its generation. It is
// replicate.Config.Fence: the saver calls it right before writing a
// manifest. When another server has taken over it returns an error
// wrapping ErrFenced, now and forever; other errors (the store
// cannot be reached) are worth retrying.
func (c *Claim) Fence(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.renewLocked(ctx); err != nil {
		return 0, err
	}
	return c.rec.Generation, nil
}

// Commit records, with a conditional write of the claim, that save id is
// committed. It is replicate.Config.Commit: the saver calls it after the
// save's manifest is stored, and readers (Commits, package catalog) ignore
// a manifest until the claim names it. A server that lost the claim gets
// an error wrapping ErrFenced, so its manifest never counts.
func (c *Claim) Commit(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, pinned := c.rec.LastSave, c.rec.Pinned
	c.rec.LastSave, c.rec.Pinned = id, nil // the save's manifest now names what was pinned
	if err := c.renewLocked(ctx); err != nil {
		c.rec.LastSave, c.rec.Pinned = prev, pinned
		return err
	}
	return nil
}

// Pin records packs in the claim, with a conditional write, for gc to
// keep (Record.Pinned) until the next Commit. It is replicate.Config.Pin.
func (c *Claim) Pin(ctx context.Context, packs []manifest.PackID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.rec.Pinned
	c.rec.Pinned = packs
	if err := c.renewLocked(ctx); err != nil {
		c.rec.Pinned = prev
		return err
	}
	return nil
}

// Release stops the renewals and marks the claim released, so that the
// next server takes it at once. A fenced claim is not written; Release
// then returns the fencing error.
func (c *Claim) Release(ctx context.Context) error {
	c.Abandon()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fenced != nil {
		return c.fenced
	}
	if c.released {
		return nil
	}
	c.rec.Released = true
	if err := c.writeLocked(ctx); err != nil {
		c.rec.Released = false
		return err
	}
	c.released = true
	return nil
}

// Abandon stops the background renewals without releasing the claim, as if
// the process had died: the claim lapses one TTL after its last renewal.
// Fence and Release still work.
func (c *Claim) Abandon() {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// errReleased ends the use of a released claim.
var errReleased = fmt.Errorf("writer claim released: %w", ErrFenced)

// ErrFenced: another server took the claim over (or it was released); the
// holder must not save again. The saver stops on it (replicate.ErrFenced
// is this error).
var ErrFenced = errors.New("fenced: another server took over this session")

// renewLocked writes the claim again (renewed_at now), with If-Match on the
// ETag of our last write. c.mu is held.
func (c *Claim) renewLocked(ctx context.Context) error {
	switch {
	case c.fenced != nil:
		return c.fenced
	case c.released:
		return errReleased
	}
	return c.writeLocked(ctx)
}

// writeLocked writes c.rec with a fresh renewed_at and nonce, with If-Match
// on c.etag. A lost precondition is checked by reading the claim back: if
// it still names our holder id and generation, the store applied an
// earlier write of ours whose answer was lost (an SDK retry of a request
// that had landed), and the write is tried again on the new ETag;
// otherwise another server took over and the claim is fenced.
func (c *Claim) writeLocked(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		c.rec.RenewedAt = c.opts.Clock.Now().UTC()
		data, err := c.rec.encode()
		if err != nil {
			return fmt.Errorf("claim %s: encode: %w", c.key, err)
		}
		tag, err := c.st.PutIf(ctx, c.key, data, store.Condition{IfMatch: c.etag})
		if err == nil {
			c.etag = tag
			return nil
		}
		if !errors.Is(err, store.ErrPreconditionFailed) {
			return fmt.Errorf("renew writer claim: %w", err)
		}
		b, info, rerr := c.st.GetWithInfo(ctx, c.key)
		if rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
			return fmt.Errorf("renew writer claim: %w (and reading it back: %w)", err, rerr)
		}
		var cur *Record
		if rerr == nil {
			cur, _ = decode(b)
		}
		if cur != nil && cur.Holder.ID == c.rec.Holder.ID && cur.Generation == c.rec.Generation && attempt < 3 {
			c.etag = info.ETag // our own earlier write landed
			if cur.Nonce == c.rec.Nonce {
				return nil // this very write landed
			}
			continue
		}
		c.fenced = c.fencedError(cur, rerr)
		c.opts.Logger.Error("fenced: another server took over this session's writer claim; this server will not save again",
			slog.String("session", c.session), slog.String("error", c.fenced.Error()))
		if c.opts.OnFenced != nil {
			go c.opts.OnFenced(c.fenced)
		}
		return c.fenced
	}
}

func (c *Claim) fencedError(cur *Record, readErr error) error {
	switch {
	case readErr != nil:
		return fmt.Errorf("%w: writer claim %s of generation %d was deleted from %s", ErrFenced, c.key, c.rec.Generation, c.st)
	case cur == nil:
		return fmt.Errorf("%w: writer claim %s of generation %d was replaced by an unreadable object", ErrFenced, c.key, c.rec.Generation)
	case cur.Holder.ID == c.rec.Holder.ID:
		return fmt.Errorf("%w: writer claim %s changed under this server (generation %d, released %t)", ErrFenced, c.key, cur.Generation, cur.Released)
	}
	return fmt.Errorf("%w: %s holds the writer claim of session %s now (generation %d; ours was %d)",
		ErrFenced, cur.Holder, c.session, cur.Generation, c.rec.Generation)
}

// renewLoop renews the claim every TTL/3 until stopped or fenced; after a
// failed renewal it retries sooner, from Poll doubling up to TTL/3.
func (c *Claim) renewLoop() {
	defer close(c.done)
	every := c.opts.TTL / 3
	wait, failing := every, time.Duration(0)
	for {
		select {
		case <-c.stop:
			return
		case <-c.opts.Clock.After(wait):
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		c.mu.Lock()
		err := c.renewLocked(ctx)
		c.mu.Unlock()
		cancel()
		switch {
		case err == nil:
			if failing > 0 {
				c.opts.Logger.Info("writer claim renewed again", slog.String("session", c.session))
			}
			wait, failing = every, 0
		case errors.Is(err, ErrFenced):
			return // logged by writeLocked; saves now fail with it
		default:
			failing = min(max(failing*2, c.opts.Poll), every)
			wait = failing
			c.opts.Logger.Warn("could not renew the writer claim; retrying (it stays ours unless another server takes it over after it lapses)",
				slog.String("session", c.session), slog.String("error", err.Error()))
		}
	}
}
