package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// The steps of a save (Saver.save), in order: skip it if nothing changed
// (skipUnchanged), write it locally (writeLocally, in local.go), upload
// what the store lacks (uploadAll), build the manifest, commit it, mark it
// committed.

// attempt is one save on its way through the steps of Saver.save.
type attempt struct {
	reason  string
	start   time.Time // when the save started (its duration)
	now     time.Time // the save's time, later than the last save's
	hasLast bool      // a save of the session is known
	snap    *session.Graph
	src     records
	chunks  []chunker.PlannedChunk
	entries []manifest.Entry
	pos     []chunkPos
	bytes   int64         // the entries' raw bytes: the graph's encoded size
	content func() string // manifest.ContentSHA256(entries), computed aside
	found   *located      // the entries located in the base, if sameContent did
	localOK bool          // the data dir holds the snapshot
	fenced  func() (uint64, error)
	up      uploaded
	m       *manifest.Manifest
}

// skipUnchanged answers a save that finds nothing to save without
// writing anything: the session did not change since the last save
// (sameGeneration) or, cut into chunks, holds the last save's content
// (sameContent).
func (s *Saver) skipUnchanged(a *attempt) (Result, bool) {
	if r, ok := s.sameGeneration(a); ok {
		return r, true
	}
	s.cut(a)
	return s.sameContent(a)
}

// sameGeneration answers a save of a session that did not change since
// the last save (or never held anything) without writing anything.
func (s *Saver) sameGeneration(a *attempt) (Result, bool) {
	snap := a.snap
	if a.hasLast && !s.force && snap.Gen == s.lastGen && s.lastSHA != "" {
		s.markSaved(snap.Gen, a.now)
		return s.unchanged(), true
	}
	if !a.hasLast && !s.force && s.lastGen == 0 && len(snap.Nodes) == 0 && !snap.Initialized {
		// A new, empty session that was never saved: nothing to save.
		return Result{Unchanged: true}, true
	}
	return Result{}, false
}

// cut cuts the snapshot into chunks, reusing the planner's cache.
func (s *Saver) cut(a *attempt) {
	a.src, a.chunks, a.entries, a.pos, a.bytes = s.plan(a.snap)
	a.content = contentHash(a.entries)
}

// contentHash computes the content hash of entries beside the save's other
// steps; the returned func waits for it.
func contentHash(entries []manifest.Entry) func() string {
	ch := make(chan string, 1)
	go func() { ch <- manifest.ContentSHA256(entries) }()
	return sync.OnceValue(func() string { return <-ch })
}

// sameContent answers a save whose content is the last save's (changes
// that undid each other) without uploading anything; the data dir records
// that it holds the base save.
func (s *Saver) sameContent(a *attempt) (Result, bool) {
	if !a.hasLast || s.force {
		return Result{}, false
	}
	if b := s.reuse; b != nil && b.idx.entries != nil {
		// The base is the last save, whose chunks are at hand: same
		// content means no chunk added or removed, found without the
		// hash while locating the chunks for the upload.
		found := b.locate(a.entries, a.pos)
		if a.found = &found; found.changed != 0 {
			return Result{}, false
		}
	} else if a.content() != s.lastSHA {
		return Result{}, false
	}
	s.lastGen = a.snap.Gen
	s.markSaved(a.snap.Gen, a.now)
	s.recordLocal(a.snap, s.base) // the content is the base save's
	return s.unchanged(), true
}

// uploadAll uploads what the save's chunks and tree need that the store
// lacks (upload), pinning the foreign packs it references, while the
// writer claim is confirmed (startFence).
func (s *Saver) uploadAll(ctx context.Context, a *attempt) error {
	a.fenced = s.startFence(ctx)
	u, err := s.upload(ctx, a.src, a.chunks, a.entries, a.pos, s.loadBase(ctx), a.found)
	if err == nil {
		err = s.pin(ctx, u)
	}
	if err != nil {
		_, _ = a.fenced() // not left running past the save
		return err
	}
	a.up = u
	return nil
}

// loadBase returns what the next save may reuse, loaded from the store
// the first time (one read per tree level of each save it loads):
//
//   - the chunks and tree nodes of the base save, when it is the store's
//     newest committed save, which no gc deletes (package gc);
//   - otherwise, when the saver can pin packs in its writer claim
//     (Config.Pin), those of the save it was primed with (a rollback) or,
//     for a session's first save, of the newest saves of up to
//     maxForeignSessions other sessions in the store: foreign packs, which
//     the save pins before it commits.
//
// A save that cannot be read is not reused: the save uploads its chunks.
func (s *Saver) loadBase(ctx context.Context) based {
	if s.reuse != nil {
		return *s.reuse
	}
	s.mu.Lock()
	newest := s.last
	s.mu.Unlock()
	var b based
	m := s.baseM
	switch {
	case m != nil && m.Tree != nil && !s.force && newest != nil && newest.ID == m.ID:
		s.addBase(ctx, &b, m, false)
	case s.cfg.Pin == nil || s.noForeign:
	case m != nil && m.Tree != nil:
		s.addBase(ctx, &b, m, true)
	case newest == nil:
		s.addOtherSessions(ctx, &b)
	}
	s.reuse = &b
	return b
}

// maxForeignSessions bounds the sessions a session's first save reads to
// find chunks the store already has.
const maxForeignSessions = 4

func (s *Saver) addBase(ctx context.Context, b *based, m *manifest.Manifest, foreign bool) {
	if err := b.add(ctx, s.cfg.Store, m, foreign); err != nil {
		s.cfg.Logger.Warn("cannot read a save's chunk tree; its chunks are uploaded again",
			slog.String("save_id", m.ID), slog.String("error", err.Error()))
	}
}

func (s *Saver) addOtherSessions(ctx context.Context, b *based) {
	names, err := catalog.Sessions(ctx, s.cfg.Store)
	if err != nil {
		s.cfg.Logger.Warn("cannot list the store's sessions to reuse their chunks", slog.String("error", err.Error()))
		return
	}
	n := 0
	for _, name := range names {
		if name == s.cfg.Session || n == maxForeignSessions {
			continue
		}
		m, err := catalog.Newest(ctx, s.cfg.Store, name)
		if err != nil || m.Tree == nil {
			continue
		}
		n++
		s.addBase(ctx, b, m, true)
	}
}

// pin records the foreign packs a save references in the writer claim, then
// checks that the saves they come from still exist: a gc that listed the
// saves before the pin saw them, one that reads the claim after it keeps
// the packs (package gc). A source gone means its packs may be gone too:
// the save fails, and its retry uploads every chunk.
func (s *Saver) pin(ctx context.Context, u uploaded) error {
	if len(u.pins) == 0 {
		return nil
	}
	if err := s.cfg.Pin(ctx, u.pins); err != nil {
		return fmt.Errorf("save session %s: pin %d packs of other saves in the writer claim: %w", s.cfg.Session, len(u.pins), err)
	}
	for _, m := range u.sources {
		key, err := manifest.Key(m.Session, m.ID)
		if err == nil {
			_, err = s.cfg.Store.Stat(ctx, key)
		}
		if err != nil {
			s.reuse, s.noForeign = nil, true
			return fmt.Errorf("save session %s: save %s of session %s, whose chunks this save reuses, cannot be found (%w); the save is retried uploading its chunks",
				s.cfg.Session, m.ID, m.Session, err)
		}
	}
	return nil
}

// buildManifest describes the save.
func (s *Saver) buildManifest(a *attempt) {
	now, snap, u := a.now, a.snap, a.up
	tree := u.tree
	m := &manifest.Manifest{
		FormatVersion:  manifest.FormatVersion,
		Session:        s.cfg.Session,
		ID:             manifest.NewID(now),
		Time:           now,
		Reason:         a.reason,
		Initialized:    snap.Initialized,
		NodeCount:      len(snap.Nodes),
		BytesTotal:     a.bytes,
		BytesUploaded:  u.bytesPut,
		ChunksTotal:    len(u.entries) + tree.Nodes,
		ChunksUploaded: u.chunksPut,
		PacksUploaded:  u.packsPut,
		ContentSHA256:  a.content(),
		Writer:         manifest.Writer{Host: s.cfg.Host},
		Tree:           &tree,
		Packs:          u.packs,
	}
	if s.force && s.base != nil { // ForceNext: the commit of a rollback
		m.RestoredFrom = s.base.ID
	}
	a.m = m
}

// startFence confirms the writer claim (Config.Fence) while the save
// uploads: a round trip fewer on the save's path. The returned func waits
// for the answer; the manifest is written only after it.
func (s *Saver) startFence(ctx context.Context) func() (uint64, error) {
	if s.cfg.Fence == nil {
		return func() (uint64, error) { return 0, nil }
	}
	type answer struct {
		gen uint64
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		gen, err := s.cfg.Fence(ctx)
		ch <- answer{gen, err}
	}()
	return func() (uint64, error) {
		a := <-ch
		return a.gen, a.err
	}
}

// commit waits for the claim's confirmation (recording its generation in
// the manifest), stores the manifest and commits it in the claim.
func (s *Saver) commit(ctx context.Context, a *attempt) error {
	gen, err := a.fenced()
	if err != nil {
		return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	m := a.m
	m.Writer.Generation = gen
	m.DurationMS = s.cfg.Clock.Since(a.start).Milliseconds()
	if err := catalog.Put(ctx, s.cfg.Store, m); err != nil {
		return fmt.Errorf("save session %s: store manifest of save %s: %w", s.cfg.Session, m.ID, err)
	}
	if s.cfg.Commit != nil {
		if err := s.cfg.Commit(ctx, m.ID); err != nil {
			return fmt.Errorf("save session %s: commit save %s: %w", s.cfg.Session, m.ID, err)
		}
	}
	return nil
}

// markCommitted records that the save, of the graph at the snapshot's
// generation, is committed: what the store has, what the session holds,
// what the data dir holds (when it holds the snapshot); it logs the save
// and returns its result.
func (s *Saver) markCommitted(a *attempt) Result {
	m, u := a.m, a.up
	old, oldNodes := u.base.idx, u.base.nodes
	next := u.next()
	s.reuse, s.baseM, s.noForeign = &next, m, false
	// No longer needed: buffers for the next plan.
	s.spare.entries, s.spare.pos, s.spare.chunks = old.entries, old.pos, s.lastChunks
	s.lastChunks = a.chunks
	if oldNodes != nil {
		clear(oldNodes)
		s.spare.nodes = oldNodes
	}
	s.lastGen, s.lastSHA, s.force = a.snap.Gen, a.content(), false
	s.markSaved(a.snap.Gen, a.now)
	s.base, s.lastMoved, s.lastRepeats = resultOf(m, false), u.moved, u.repeats
	if a.localOK {
		s.recordLocal(a.snap, s.base)
	}
	r := *resultOf(m, false)
	r.DurationMS = s.cfg.Clock.Since(a.start).Milliseconds()
	s.logSave(a.reason, m, u.moved, r.DurationMS)
	return r
}

func (s *Saver) logSave(reason string, m *manifest.Manifest, moved int, durationMS int64) {
	s.cfg.Logger.Info("save",
		slog.String("session", s.cfg.Session), slog.String("reason", reason), slog.String("id", m.ID),
		slog.Int("nodes", m.NodeCount), slog.Int64("bytes_total", m.BytesTotal),
		slog.Int64("bytes_uploaded", m.BytesUploaded), slog.Int("chunks_uploaded", m.ChunksUploaded),
		slog.Int("chunks_moved", moved),
		slog.Int64("duration_ms", durationMS))
}
