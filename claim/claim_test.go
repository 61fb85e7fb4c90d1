package claim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/internal/miniotest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/faulty"
	"github.com/pitr-dev/pitr/store/file"
	"github.com/pitr-dev/pitr/store/minio"
)

func TestMain(m *testing.M) { miniotest.Main(m) }

const session = "sess"

// The claim tests run on the file store and on a real MinIO.
var stores = map[string]func(t *testing.T) store.Store{
	"file": func(t *testing.T) store.Store {
		s, err := file.New(filepath.Join(t.TempDir(), "store"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
	"minio": func(t *testing.T) store.Store {
		srv := miniotest.Shared(t)
		s, err := minio.New(t.Context(), minio.Config{Endpoint: srv.Addr, Bucket: miniotest.Bucket(t),
			AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	},
}

func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newStore(t))
		})
	}
}

// server is one would-be holder: its options on a shared timeline.
func server(tl *clock.Fake, host string, l *logs) claim.Options {
	o := claim.Options{Host: host, PID: 100 + len(host), Clock: tl, Logger: slog.New(slog.DiscardHandler)}
	if l != nil {
		o.Logger = l.logger()
	}
	return o
}

func mustAcquire(t *testing.T, st store.Store, opts claim.Options) *claim.Claim {
	t.Helper()
	c, err := claim.Acquire(t.Context(), st, session, opts)
	if err != nil {
		t.Fatalf("Acquire by %s: %v", opts.Host, err)
	}
	t.Cleanup(c.Abandon)
	return c
}

func record(t *testing.T, st store.Store) claim.Record {
	t.Helper()
	b, err := st.Get(t.Context(), claim.Key(session))
	if err != nil {
		t.Fatal(err)
	}
	var r claim.Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("claim object: %v\n%s", err, b)
	}
	return r
}

type result struct {
	c   *claim.Claim
	err error
}

// acquirers counts the Acquire calls running in the background
// (acquireAsync), and the renewal loops of the claims they got.
type acquirers struct {
	running, renewing atomic.Int32
}

// acquireAsync runs Acquire in the background, counted in acq.
func acquireAsync(t *testing.T, st store.Store, opts claim.Options, acq *acquirers) <-chan result {
	ch := make(chan result, 1)
	acq.running.Add(1)
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = claim.DefaultTTL
	}
	opts.Clock = &acquirerClock{Clock: opts.Clock, period: ttl / 3, renewing: &acq.renewing}
	go func() {
		c, err := claim.Acquire(t.Context(), st, session, opts)
		acq.running.Add(-1)
		if c != nil {
			t.Cleanup(c.Abandon)
		}
		ch <- result{c, err}
	}()
	return ch
}

// acquirerClock is the clock of one acquireAsync. It counts in renewing
// the renewal loop of the claim Acquire got, before that loop's first
// timer (a renewal period, TTL/3: longer than any wait of Acquire) is
// pending, so that drive never takes that timer for a poll of an Acquire
// still returning.
type acquirerClock struct {
	clock.Clock
	period   time.Duration
	once     sync.Once
	renewing *atomic.Int32
}

func (c *acquirerClock) After(d time.Duration) <-chan time.Time {
	if d == c.period {
		c.once.Do(func() { c.renewing.Add(1) })
	}
	return c.Clock.After(d)
}

// drive advances the timeline in steps of step until done holds, each time
// after every goroutine it drives waits again: fixed timers (renew loops
// of claims taken before), one poll timer per running Acquire, and the
// renewal timer of every claim the Acquire calls got. It returns the fake
// time spent.
func drive(t *testing.T, tl *clock.Fake, fixed int, acq *acquirers, step time.Duration, done func() bool) time.Duration {
	t.Helper()
	var spent time.Duration
	stuck, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for !done() {
		want := func() int { return fixed + int(acq.running.Load()) + int(acq.renewing.Load()) }
		if !waitForTimers(stuck, tl, want) {
			t.Fatalf("stuck: fewer than %d timers pending (%d renew loops before, %d acquirers running, %d claims got)",
				want(), fixed, acq.running.Load(), acq.renewing.Load())
		}
		if done() {
			break
		}
		if spent > 5*time.Minute {
			t.Fatalf("still not done after %s of fake time", spent)
		}
		tl.Advance(step)
		spent += step
	}
	return spent
}

// waitForTimers waits until tl has want() timers pending, and reports
// false if stuck ends first. want may change while it waits (an Acquire
// returns, or starts renewing its claim), so each wait is short, and one
// counts only if want did not change during it.
func waitForTimers(stuck context.Context, tl *clock.Fake, want func() int) bool {
	for {
		n := want()
		ctx, cancel := context.WithTimeout(stuck, 10*time.Millisecond)
		err := tl.BlockUntilContext(ctx, n)
		cancel()
		switch {
		case err == nil && want() == n:
			return true
		case stuck.Err() != nil:
			return false
		}
	}
}

func TestFirstAcquireRenewAndRelease(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		tl := newTimeline()
		a := mustAcquire(t, st, server(tl, "host-a", nil))
		if a.Generation() != 1 || a.How() != claim.HowNew || a.Waited() != 0 {
			t.Errorf("first claim: generation %d, how %s, waited %s; want 1, new, 0", a.Generation(), a.How(), a.Waited())
		}
		if _, ok := a.Previous(); ok {
			t.Error("first claim has a previous holder")
		}
		r := record(t, st)
		if r.Holder.Host != "host-a" || r.Generation != 1 || r.Released || r.TTLMS != 30000 ||
			len(r.History) != 1 || r.History[0].How != claim.HowNew || r.Session != session {
			t.Errorf("claim object %+v", r)
		}
		// The background renewal, every TTL/3, rewrites the claim.
		settle(t, tl, 1)
		tl.Advance(10 * time.Second)
		settle(t, tl, 1)
		if r2 := record(t, st); !r2.RenewedAt.After(r.RenewedAt) || r2.Nonce == r.Nonce || r2.Generation != 1 {
			t.Errorf("after a renewal period: renewed_at %v → %v, generation %d", r.RenewedAt, r2.RenewedAt, r2.Generation)
		}
		if g, err := a.Fence(t.Context()); g != 1 || err != nil {
			t.Errorf("Fence = %d, %v; want 1, nil", g, err)
		}
		if err := a.Release(t.Context()); err != nil {
			t.Fatalf("Release: %v", err)
		}
		if r := record(t, st); !r.Released || r.Generation != 1 {
			t.Errorf("released claim object %+v", r)
		}
		if _, err := a.Fence(t.Context()); !errors.Is(err, replicate.ErrFenced) {
			t.Errorf("Fence after Release: %v, want ErrFenced", err)
		}

		// A released claim is taken at once.
		b := mustAcquire(t, st, server(tl, "host-b", nil))
		prev, _ := b.Previous()
		if b.Generation() != 2 || b.How() != claim.HowReleased || prev.Host != "host-a" || b.Waited() != 0 {
			t.Errorf("claim after a release: generation %d, how %s, previous %v, waited %s", b.Generation(), b.How(), prev, b.Waited())
		}
		if r := record(t, st); len(r.History) != 2 || r.History[1].Host != "host-b" || r.History[1].Generation != 2 {
			t.Errorf("history %+v", r.History)
		}
	})
}

// A live holder is detected within one renewal period (TTL/3) plus a poll,
// well within SPEC's 30 s, and the error names its host. A clock far ahead
// does not make the second server steal the claim.
func TestLiveHolderRefuses(t *testing.T) {
	for _, skew := range []time.Duration{0, time.Hour, -time.Hour} {
		t.Run("skew "+skew.String(), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				tl := newTimeline()
				mustAcquire(t, st, server(tl, "host-a", nil))
				settle(t, tl, 1)            // its renewal loop waits
				tl.Advance(4 * time.Second) // the holder renewed 4 s ago
				var l logs
				opts := server(tl, "host-b", &l)
				opts.Clock = skewed{tl, skew}
				var acq acquirers
				ch := acquireAsync(t, st, opts, &acq)
				spent := drive(t, tl, 1, &acq, time.Second, func() bool { return acq.running.Load() == 0 })
				res := <-ch
				if !errors.Is(res.err, claim.ErrHeld) || !strings.Contains(res.err.Error(), "host-a") {
					t.Fatalf("second Acquire: %v, want ErrHeld naming host-a", res.err)
				}
				if spent > 8*time.Second {
					t.Errorf("refused after %s, want within the holder's next renewal (6 s)", spent)
				}
				if !l.contains("waiting for the claim of host-a to lapse") {
					t.Errorf("no waiting message logged:\n%s", l.String())
				}
				if r := record(t, st); r.Holder.Host != "host-a" || r.Generation != 1 {
					t.Errorf("claim changed hands: %+v", r)
				}
			})
		})
	}
}

// A holder that stopped renewing loses the claim once it lapsed: TTL after
// its last renewal when the clocks agree, and never before this server
// watched it for half a TTL (more than a renewal period).
func TestDeadHolderLapses(t *testing.T) {
	cases := []struct {
		name     string
		deadFor  time.Duration // since the last renewal when B starts
		skew     time.Duration // B's clock ahead of A's
		wantWait time.Duration // fake time B waits
	}{
		{"just died", 0, 0, 30 * time.Second},
		{"died 20s ago", 20 * time.Second, 0, 15 * time.Second},
		{"died long ago", time.Hour, 0, 15 * time.Second},
		{"clock behind", 0, -time.Hour, 30 * time.Second},
		{"clock ahead", 0, time.Hour, 15 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, st store.Store) {
				// The holder on a timeline of its own (same start), where its
				// stopped renewal timer stays behind.
				tl, tlA := newTimeline(), newTimeline()
				a := mustAcquire(t, st, server(tlA, "host-a", nil))
				a.Abandon() // the holder dies: no more renewals
				tl.Advance(tc.deadFor)
				var l logs
				opts := server(tl, "host-b", &l)
				opts.Clock = skewed{tl, tc.skew}
				var acq acquirers
				ch := acquireAsync(t, st, opts, &acq)
				spent := drive(t, tl, 0, &acq, time.Second, func() bool { return acq.running.Load() == 0 })
				res := <-ch
				if res.err != nil {
					t.Fatalf("Acquire after the holder died: %v", res.err)
				}
				b := res.c
				// Waited is exact, and so is the time driven: the driver
				// tells b's renewal timer from its poll timer.
				if b.Waited() != tc.wantWait || spent != tc.wantWait {
					t.Errorf("took over after %s of waiting (%s driven), want %s", b.Waited(), spent, tc.wantWait)
				}
				prev, _ := b.Previous()
				if b.Generation() != 2 || b.How() != claim.HowLapsed || prev.Host != "host-a" {
					t.Errorf("claim: generation %d, how %s, previous %v", b.Generation(), b.How(), prev)
				}
				if !l.contains("waiting for the claim of host-a to lapse") {
					t.Errorf("no waiting message logged:\n%s", l.String())
				}
				// The dead holder, should it come back, is fenced.
				_, err := a.Fence(t.Context())
				if !errors.Is(err, replicate.ErrFenced) || !strings.Contains(err.Error(), "host-b") {
					t.Errorf("old holder's Fence: %v, want ErrFenced naming host-b", err)
				}
			})
		})
	}
}

func TestTakeoverFencesOldHolder(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		tl := newTimeline()
		aOpts := server(tl, "host-a", nil)
		told := make(chan error, 1)
		aOpts.OnFenced = func(err error) { told <- err }
		a := mustAcquire(t, st, aOpts)
		opts := server(tl, "host-b", nil)
		opts.Takeover = true
		b := mustAcquire(t, st, opts)
		if prev, _ := b.Previous(); b.Generation() != 2 || b.How() != claim.HowTakeover || prev.Host != "host-a" {
			t.Errorf("takeover: generation %d, how %s, previous %v", b.Generation(), b.How(), prev)
		}
		_, err := a.Fence(t.Context())
		if !errors.Is(err, replicate.ErrFenced) || !strings.Contains(err.Error(), "host-b") {
			t.Fatalf("old holder's Fence: %v, want ErrFenced naming host-b", err)
		}
		if a.Fenced() == nil {
			t.Error("Fenced() = nil after a failed Fence")
		}
		select {
		case err := <-told:
			if !errors.Is(err, replicate.ErrFenced) {
				t.Errorf("OnFenced got %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("OnFenced was not called")
		}
		// Fenced stays fenced, and neither its renewals nor its Release
		// touch the new holder's claim.
		tl.Advance(10 * time.Second)
		settle(t, tl, 1) // only b's renewal loop is left
		if err := a.Release(t.Context()); !errors.Is(err, replicate.ErrFenced) {
			t.Errorf("Release of a fenced claim: %v, want ErrFenced", err)
		}
		if g, err := b.Fence(t.Context()); g != 2 || err != nil {
			t.Errorf("new holder's Fence = %d, %v; want 2, nil", g, err)
		}
		opts = server(tl, "host-c", nil)
		opts.Takeover = true
		c := mustAcquire(t, st, opts)
		if c.Generation() != 3 {
			t.Errorf("second takeover: generation %d, want 3", c.Generation())
		}
		if _, err := b.Fence(t.Context()); !errors.Is(err, replicate.ErrFenced) {
			t.Errorf("second holder's Fence: %v, want ErrFenced", err)
		}
		r := record(t, st)
		if len(r.History) != 3 || r.History[2].How != claim.HowTakeover || r.Holder.Host != "host-c" {
			t.Errorf("claim object %+v", r)
		}
	})
}

// Of servers starting at once on an unclaimed session exactly one gets the
// claim; the others see it renewed and refuse.
func TestConcurrentAcquirers(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		tl := newTimeline()
		const n = 6
		var acq acquirers
		chans := make([]<-chan result, n)
		for i := range n {
			chans[i] = acquireAsync(t, st, server(tl, "host-"+string(rune('a'+i)), nil), &acq)
		}
		var (
			mu      sync.Mutex
			results []result
		)
		collect := func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i, ch := range chans {
				if ch == nil {
					continue
				}
				select {
				case r := <-ch:
					results = append(results, r)
					chans[i] = nil
				default:
				}
			}
			return len(results) == n
		}
		drive(t, tl, 0, &acq, time.Second, collect)
		var holders []*claim.Claim
		for _, r := range results {
			switch {
			case r.err == nil:
				holders = append(holders, r.c)
			case !errors.Is(r.err, claim.ErrHeld):
				t.Errorf("Acquire: %v, want success or ErrHeld", r.err)
			}
		}
		if len(holders) != 1 {
			t.Fatalf("%d of %d concurrent acquirers hold the claim, want 1", len(holders), n)
		}
		if g, err := holders[0].Fence(t.Context()); g != 1 || err != nil {
			t.Errorf("holder's Fence = %d, %v", g, err)
		}
	})
}

// A renewal whose answer is lost after it landed (the SDK retries it and
// gets 412) is not taken for a takeover; store failures are not either.
func TestLostAnswersAndOutagesDoNotFence(t *testing.T) {
	forEachStore(t, func(t *testing.T, inner store.Store) {
		st := faulty.New(inner)
		tl := newTimeline()
		boom := errors.New("connection reset")
		// Acquire's own write lands but its answer is lost.
		// It retries after a poll interval and finds its own claim.
		remove := st.Inject(faulty.Rule{Err: boom, Ops: []faulty.Op{faulty.PutIf}, After: true, Times: 1})
		var acq acquirers
		ch := acquireAsync(t, st, server(tl, "host-a", nil), &acq)
		drive(t, tl, 0, &acq, time.Second, func() bool { return acq.running.Load() == 0 })
		remove()
		res := <-ch
		if res.err != nil {
			t.Fatalf("Acquire with a lost answer: %v", res.err)
		}
		a := res.c
		if a.Generation() != 1 || a.How() != claim.HowNew || st.Calls(faulty.PutIf) != 1 {
			t.Errorf("claim: generation %d, how %s after %d writes; want 1, new, 1", a.Generation(), a.How(), st.Calls(faulty.PutIf))
		}
		// A lost answer, then the retry sees 412: still ours.
		st.Inject(faulty.Rule{Err: boom, Ops: []faulty.Op{faulty.PutIf}, After: true, Times: 1})
		if _, err := a.Fence(t.Context()); err == nil || errors.Is(err, replicate.ErrFenced) {
			t.Fatalf("Fence with a lost answer: %v, want a plain error", err)
		}
		if g, err := a.Fence(t.Context()); g != 1 || err != nil {
			t.Fatalf("Fence after a lost answer: %d, %v; want 1, nil", g, err)
		}
		// An outage: renewals and Fence fail, but nothing is fenced.
		st.Fail(boom, faulty.PutIf, faulty.GetWithInfo)
		settle(t, tl, 1)
		for range 5 {
			tl.Advance(10 * time.Second)
			settle(t, tl, 1)
		}
		if _, err := a.Fence(t.Context()); err == nil || errors.Is(err, replicate.ErrFenced) {
			t.Errorf("Fence during an outage: %v, want a plain error", err)
		}
		st.Heal()
		if g, err := a.Fence(t.Context()); g != 1 || err != nil || a.Fenced() != nil {
			t.Errorf("Fence after the outage: %d, %v; want 1, nil", g, err)
		}
	})
}

func TestUnreadableClaim(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		if err := st.Put(t.Context(), claim.Key(session), []byte("{not json")); err != nil {
			t.Fatal(err)
		}
		tl := newTimeline()
		_, err := claim.Acquire(t.Context(), st, session, server(tl, "host-a", nil))
		if !errors.Is(err, claim.ErrUnreadable) || !strings.Contains(err.Error(), claim.Key(session)) {
			t.Fatalf("Acquire over an unreadable claim: %v, want an error naming it", err)
		}
		opts := server(tl, "host-a", nil)
		opts.Takeover = true
		c := mustAcquire(t, st, opts)
		if c.How() != claim.HowReplaced || record(t, st).Holder.Host != "host-a" {
			t.Errorf("takeover of an unreadable claim: how %s, record %+v", c.How(), record(t, st))
		}
	})
}

func TestAcquireCanceledWhileWaiting(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		tl := newTimeline()
		mustAcquire(t, st, server(newTimeline(), "host-a", nil)).Abandon()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := claim.Acquire(ctx, st, session, server(tl, "host-b", nil))
			done <- err
		}()
		settle(t, tl, 1) // waiting
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire cancelled while waiting: %v, want context.Canceled", err)
		}
	})
}

// With the real clock and short TTLs: a dead holder is replaced after half
// to one of its TTLs, and the new holder's renewals keep a third server
// out (it watches with the holder's TTL, from the claim object).
func TestRealClock(t *testing.T) {
	st := stores["file"](t)
	opts := claim.Options{Host: "host-a", TTL: 600 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	a := mustAcquire(t, st, opts)
	a.Abandon()
	start := time.Now()
	opts.Host = "host-b"
	opts.TTL = 3 * time.Second // b renews every second
	b := mustAcquire(t, st, opts)
	if took := time.Since(start); took < 300*time.Millisecond || b.Generation() != 2 {
		t.Errorf("took over after %s with generation %d, want ≥ 300ms and 2", took, b.Generation())
	}
	opts.Host = "host-c"
	_, err := claim.Acquire(t.Context(), st, session, opts)
	if !errors.Is(err, claim.ErrHeld) || !strings.Contains(err.Error(), "host-b") {
		t.Errorf("third server: %v, want ErrHeld naming host-b", err)
	}
}

// A store that is down at start-up is waited for; one that refuses access
// fails Acquire at once.
func TestAcquireWaitsForTheStore(t *testing.T) {
	forEachStore(t, func(t *testing.T, inner store.Store) {
		st := faulty.New(inner)
		tl := newTimeline()
		st.Fail(errors.New("connection refused"), faulty.GetWithInfo)
		var acq acquirers
		ch := acquireAsync(t, st, server(tl, "host-a", nil), &acq)
		drive(t, tl, 0, &acq, time.Second, func() bool { return st.Calls(faulty.GetWithInfo) >= 20 })
		st.Heal()
		drive(t, tl, 0, &acq, time.Second, func() bool { return acq.running.Load() == 0 })
		if res := <-ch; res.err != nil || res.c.Generation() != 1 {
			t.Fatalf("Acquire once the store answers: %v", res.err)
		}

		st2 := faulty.New(inner)
		st2.Fail(fmt.Errorf("get: %w", store.ErrAccessDenied), faulty.GetWithInfo)
		_, err := claim.Acquire(t.Context(), st2, "other", server(tl, "host-b", nil))
		if !errors.Is(err, store.ErrAccessDenied) {
			t.Errorf("Acquire on a store refusing access: %v, want ErrAccessDenied", err)
		}
	})
}
