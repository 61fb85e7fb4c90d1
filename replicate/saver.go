package replicate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// Config configures a Saver.
type Config struct {
	Store    store.Store
	Session  string        // session name
	DataDir  string        // local copy, written at every save
	Interval time.Duration // save at most this long after a change
	Parallel int           // concurrent chunk uploads (default 16)
	Host     string        // recorded in manifests as the writer
	StoreURL string        // recorded in session.json (must be redacted)
	// RetryMin and RetryMax bound the backoff between failed attempts
	// (defaults 1s and 30s).
	RetryMin, RetryMax time.Duration
	Clock              clock.Clock // default clock.Or(nil), the wall clock
	// GCGrace is the shortest --grace any `pitr gc` on this store uses
	// (default gcsafety.DefaultGrace, gc's default). A save fails if it
	// does not commit within GCGrace.SaveDeadline(), so gc never deletes a
	// pack a save in flight wrote (the argument is in package gc).
	GCGrace gcsafety.Grace
	// PackSize caps the packs a save writes (default DefaultPackSize).
	PackSize int
	// Fence, when set, is called right before a save's manifest is written.
	// It confirms this server still holds the session's writer claim and
	// returns the claim's generation, recorded in the manifest. An error
	// wrapping ErrFenced means another server took over: the saver stops
	// saving for good.
	Fence func(ctx context.Context) (generation uint64, err error)
	// Pin, when set, records in the writer claim packs a save references
	// that its session's newest committed save does not (claim.Pin), so
	// that the save may reuse them (a rollback, a new session's first
	// save); without it such saves upload their chunks.
	Pin func(ctx context.Context, packs []manifest.PackID) error
	// Commit, when set, is called after a save's manifest is stored; the
	// save counts (claim.Commits) only once it returns nil. An error
	// wrapping ErrFenced stops the saver for good, as Fence does.
	Commit func(ctx context.Context, saveID string) error
	// OnSaved, when set, is called after every save that wrote a manifest.
	// It must not block (retention uses it to wake its own goroutine).
	OnSaved func(Result)
	// OnPlan, when set, is told the size of the graph a save is about to
	// upload (serve sets its memory limit from it).
	OnPlan func(graphBytes int64)
	// OnResult, if set, is called after every save attempt with its error
	// (nil for a success, saved or unchanged), outside the saver's locks.
	OnResult func(error)
	// SlowSave is how long a save may run before Status warns about it
	// (default DefaultSlowSave).
	SlowSave time.Duration
	// Journal, if set, is the data dir's journal: a save waits for it to
	// hold the snapshot's changes on disk, and writes the whole graph (and
	// releases the journal) only at checkpoints (see recordLocal). Without
	// one, every save writes the whole graph.
	Journal Journal
	// CheckpointBytes is the least journal a save folds into the graph
	// file (default DefaultCheckpointBytes).
	CheckpointBytes int64
	Logger          *slog.Logger
	Metrics         *Metrics // may be nil
}

// Journal is what the saver needs of the data dir's journal.
type Journal interface {
	// Wait returns once every change up to lsn is on disk.
	Wait(ctx context.Context, lsn uint64) error
	// Unreleased is the bytes appended since the last Release.
	Unreleased() int64
	// Release says the graph file holds every change up to lsn.
	Release(lsn uint64) error
}

// Saver saves one session to a store. Save is safe for concurrent use; Run
// drives the automatic triggers.
type Saver struct {
	cfg   Config
	sess  *session.Session
	reqs  chan string
	retry chan string // reasons of failed saves, for Run to retry

	saveMu  sync.Mutex         // one save at a time
	queued  atomic.Int32       // Save calls waiting for saveMu (for tests)
	planner chunker.Planner    // the chunk cuts of the last save, to redo only what changed
	trees   manifest.TreeCache // the tree nodes of the last save, to encode only what changed
	// reuse is where the chunks and tree nodes of the base save are, for
	// the next save to reference instead of uploading them again; nil
	// until loaded (loadBase). baseM is the base save's manifest.
	reuse *based
	baseM *manifest.Manifest
	// spare are buffers for the next save's chunks, entries, positions and
	// tree nodes: those of the save before the base, once a save is
	// committed.
	spare struct {
		nodes   map[chunker.ID]manifest.Loc // empty
		chunks  []chunker.PlannedChunk
		entries []manifest.Entry
		pos     []chunkPos
	}
	// lastChunks is the last committed save's plan.
	lastChunks []chunker.PlannedChunk
	// localFile is the data dir's graph file as this saver last wrote or
	// read it (nil: not yet known).
	localFile *datadir.File
	// noForeign: a save relying on other saves' packs found one gone; reuse
	// nothing foreign until the next committed save.
	noForeign bool
	lastGen   uint64
	lastSHA   string
	lastMoved int // chunks the last save moved out of packs it rewrote
	// lastRepeats is how many of the last save's chunks repeated one it
	// stored (for tests).
	lastRepeats int
	force       bool // the next save writes a manifest even if nothing changed
	// base is the save the session's content was last written to the
	// store as (Prime, or this saver's last commit): what the data dir
	// records as its save_id while it holds unsaved edits. It is not the
	// newest save when a diverged copy was forced (--force-local).
	base *Result

	mu       sync.Mutex // guards the fields below
	last     *Result
	saves    uint64    // saves this saver committed
	since    time.Time // start of the running save (zero: none)
	unsaved  time.Time // when the oldest change not in a committed save was made (zero: none)
	lastErr  string
	localErr string // the last write of the data dir failed ("" otherwise)
	fenced   error  // set once another writer took over
}

// DefaultSlowSave is the default Config.SlowSave.
const DefaultSlowSave = 30 * time.Second

// ErrFenced means another server took over the session's writer claim;
// this saver will not write to the store again.
var ErrFenced = claim.ErrFenced

// New returns a saver for sess. Call Prime when the session came from a save.
func New(sess *session.Session, cfg Config) *Saver {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	cfg.GCGrace = cfg.GCGrace.OrDefault()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CheckpointBytes <= 0 {
		cfg.CheckpointBytes = DefaultCheckpointBytes
	}
	if cfg.SlowSave <= 0 {
		cfg.SlowSave = DefaultSlowSave
	}
	s := &Saver{cfg: cfg, sess: sess, reqs: make(chan string, 16), retry: make(chan string, 1)}
	s.exportAges()
	return s
}

// exportAges makes the metrics (if any) report the age of the running save
// and of the oldest unsaved change.
func (s *Saver) exportAges() {
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	age := func() float64 {
		if since := s.Status().SavingSince; since != nil {
			return s.cfg.Clock.Since(*since).Seconds()
		}
		return 0
	}
	m.savingAge.Store(&age)
	unsaved := func() float64 {
		if since, ok := s.UnsavedSince(); ok {
			return s.cfg.Clock.Since(since).Seconds()
		}
		return 0
	}
	m.unsavedAge.Store(&unsaved)
}

// Prime tells the saver that the session's current content is that of save
// m: a save with nothing changed since then writes nothing, and, while m is
// the store's newest committed save (SetLast), the next save references
// m's packs rather than uploading their chunks again (see loadBase).
func (s *Saver) Prime(m *manifest.Manifest) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.reuse, s.baseM, s.noForeign = nil, m, false
	s.lastGen = s.sess.Gen()
	s.lastSHA = m.ContentSHA256
	s.base = resultOf(m, false)
	s.mu.Lock()
	s.last = resultOf(m, false)
	s.mu.Unlock()
}

// SetLast records m as the newest save without claiming that the session
// holds its content (the local data dir was ahead of the store).
func (s *Saver) SetLast(m *manifest.Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = resultOf(m, false)
}

// MarkDirty tells the saver that the session may hold changes the store
// lacks (a local copy newer than its last save): the next save compares
// content instead of trusting that nothing changed.
func (s *Saver) MarkDirty() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.lastGen = ^uint64(0)
	s.noteChange()
}

// ForceNext makes the next save commit a manifest even if the content is
// that of the last save: a rollback to an older save must become the newest.
// It stays in force until a save succeeds.
func (s *Saver) ForceNext() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.force = true
}

// MarkFenced stops the saver for good: another server took over the
// session (err wraps ErrFenced). The claim's renewal calls it, so that a
// fenced server says so at once rather than at its next save.
func (s *Saver) MarkFenced(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markFencedLocked(err)
}

func (s *Saver) markFencedLocked(err error) {
	if s.fenced != nil {
		return
	}
	s.fenced = err
	s.lastErr = err.Error()
	s.sess.Fence(err.Error())
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.fenced.Set(1)
	}
	s.cfg.Logger.Error("fenced: another server took over this session; no more saves from this server (the local copy stays in the data dir)",
		slog.String("session", s.cfg.Session), slog.String("error", err.Error()))
}

// Request asks for a save soon, with reason; it never blocks.
func (s *Saver) Request(reason string) {
	select {
	case s.reqs <- reason:
	default: // a save is already queued; it will include this change
	}
}

// Saves lists the session's saves in the store, oldest first.
func (s *Saver) Saves(ctx context.Context) ([]SaveSummary, error) {
	ms, err := catalog.List(ctx, s.cfg.Store, s.cfg.Session)
	if err != nil {
		return nil, err
	}
	out := make([]SaveSummary, len(ms))
	for i, m := range ms {
		out[i] = Summarize(m)
	}
	return out, nil
}

// Summarize returns the listing form of a manifest.
func Summarize(m *manifest.Manifest) SaveSummary {
	return SaveSummary{ID: m.ID, Time: m.Time, Reason: m.Reason, Initialized: m.Initialized,
		NodeCount: m.NodeCount, BytesTotal: m.BytesTotal, BytesUploaded: m.BytesUploaded}
}

func resultOf(m *manifest.Manifest, unchanged bool) *Result {
	return &Result{ID: m.ID, Time: m.Time, Reason: m.Reason, NodeCount: m.NodeCount,
		BytesTotal: m.BytesTotal, BytesUploaded: m.BytesUploaded, ChunksTotal: m.ChunksTotal,
		ChunksUploaded: m.ChunksUploaded, DurationMS: m.DurationMS, Unchanged: unchanged}
}

// Save saves the session now. With nothing changed since the last save it
// writes nothing and returns that save with Unchanged set.
//
// A Save that had to wait for a save already running answers that save
// when it holds every change made before this call (Unchanged false, its
// own id, reason and bytes), and saves again otherwise.
func (s *Saver) Save(ctx context.Context, reason string) (Result, error) {
	s.mu.Lock()
	before := s.saves
	s.mu.Unlock()
	s.queued.Add(1)
	s.saveMu.Lock()
	s.queued.Add(-1)
	defer s.saveMu.Unlock()
	if r, ok := s.answeredMeanwhile(before); ok {
		return r, nil
	}
	defer s.running()()
	if fenced := s.fencedErr(); fenced != nil {
		if err := s.keepLocal(); err != nil {
			s.cfg.Logger.Error("fenced, and the unsaved edits could not be written to the data dir", slog.String("error", err.Error()))
		}
		return Result{}, fenced
	}
	r, err := s.save(ctx, reason)
	return s.report(reason, r, err)
}

// answeredMeanwhile returns the last save when one finished while this call
// waited (saves went past before) and it holds every change.
func (s *Saver) answeredMeanwhile(before uint64) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saves > before && s.sess.Gen() == s.lastGen && s.last != nil {
		return *s.last, true
	}
	return Result{}, false
}

// running marks a save as running (Status.SavingSince) until the returned
// func is called.
func (s *Saver) running() (done func()) {
	s.mu.Lock()
	s.since = s.cfg.Clock.Now()
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.since = time.Time{}
		s.mu.Unlock()
	}
}

func (s *Saver) fencedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

// report records a save attempt and tells the hooks about it.
func (s *Saver) report(reason string, r Result, err error) (Result, error) {
	s.record(reason, r, err)
	if s.cfg.OnResult != nil && !errors.Is(err, context.Canceled) {
		s.cfg.OnResult(err)
	}
	if err != nil {
		return Result{}, err
	}
	if !r.Unchanged && s.cfg.OnSaved != nil {
		s.cfg.OnSaved(r)
	}
	return r, nil
}

// record updates the status, metrics and log after a save attempt, and
// queues a failed one for Run to retry.
func (s *Saver) record(reason string, r Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, context.Canceled):
		// stopped by its caller (shutdown): not a store failure, not retried
		s.cfg.Logger.Info("save canceled", slog.String("reason", reason), slog.String("session", s.cfg.Session))
	case err != nil:
		s.recordFailureLocked(reason, err)
	default:
		s.recordSuccessLocked(r)
	}
}

func (s *Saver) recordFailureLocked(reason string, err error) {
	if m := s.cfg.Metrics; m != nil {
		m.failures.Inc()
		m.saves.WithLabelValues("error").Inc()
	}
	if errors.Is(err, ErrFenced) {
		s.markFencedLocked(err)
		return
	}
	s.lastErr = err.Error()
	s.cfg.Logger.Error("save failed", slog.String("reason", reason), slog.String("session", s.cfg.Session), slog.String("error", err.Error()))
	select {
	case s.retry <- reason:
	default:
	}
}

func (s *Saver) recordSuccessLocked(r Result) {
	s.lastErr = ""
	if !r.Unchanged {
		rr := r
		s.last = &rr
		s.saves++
	}
	m := s.cfg.Metrics
	if m == nil {
		return
	}
	m.lastSuccess.Set(float64(s.cfg.Clock.Now().Unix()))
	if r.Unchanged {
		m.saves.WithLabelValues("unchanged").Inc()
		return
	}
	m.saves.WithLabelValues("ok").Inc()
	m.duration.Observe(float64(r.DurationMS) / 1000)
	m.bytesUploaded.Add(float64(r.BytesUploaded))
	m.chunksUp.Add(float64(r.ChunksUploaded))
}

// unchanged is the last save, as the answer to a save that found nothing
// to save.
func (s *Saver) unchanged() Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := *s.last
	r.Unchanged, r.BytesUploaded, r.ChunksUploaded, r.DurationMS = true, 0, 0, 0
	return r
}

// save is the pipeline of one save: take a snapshot of the session, skip
// it if nothing changed, write it locally, upload what the store lacks,
// build the manifest, commit it, mark it committed.
func (s *Saver) save(ctx context.Context, reason string) (_ Result, err error) {
	start := s.cfg.Clock.Now()
	// GC safety (package gc): commit by the grace's save deadline or fail.
	parent, deadline := ctx, s.cfg.GCGrace.SaveDeadline()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	defer func() {
		if err != nil && errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			err = fmt.Errorf("%w (a save must commit within %s, a quarter of the gc grace %s; it is retried as a new save)",
				err, deadline, s.cfg.GCGrace)
		}
	}()
	snap := s.sess.Snapshot()
	now, hasLast := s.saveTime()
	a := &attempt{reason: reason, start: start, now: now, hasLast: hasLast, snap: snap}
	if r, ok := s.skipUnchanged(a); ok {
		return r, nil
	}
	s.writeLocally(ctx, a)
	if err := s.uploadAll(ctx, a); err != nil {
		return Result{}, err
	}
	s.buildManifest(a)
	if err := s.commit(ctx, a); err != nil {
		return Result{}, err
	}
	return s.markCommitted(a), nil
}

func (s *Saver) saveTime() (now time.Time, hasLast bool) {
	now = s.cfg.Clock.Now().UTC().Truncate(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil && !now.After(s.last.Time) {
		now = s.last.Time.Add(time.Millisecond)
	}
	return now, s.last != nil
}
