package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// The steps of a save (Saver.save): upload, build the manifest, commit it,
// mark it committed, log it.

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
func (s *Saver) buildManifest(now time.Time, reason string, snap *session.Graph, u uploaded) *manifest.Manifest {
	var total int64
	for _, e := range u.entries {
		total += e.Size
	}
	tree := u.tree
	m := &manifest.Manifest{
		FormatVersion:  manifest.FormatVersion,
		Session:        s.cfg.Session,
		ID:             manifest.NewID(now),
		Time:           now,
		Reason:         reason,
		Initialized:    snap.Initialized,
		NodeCount:      len(snap.Nodes),
		BytesTotal:     total,
		BytesUploaded:  u.bytesPut,
		ChunksTotal:    len(u.entries) + tree.Nodes,
		ChunksUploaded: u.chunksPut,
		PacksUploaded:  u.packsPut,
		ContentSHA256:  u.content,
		Writer:         manifest.Writer{Host: s.cfg.Host},
		Tree:           &tree,
		Packs:          u.packs,
	}
	if s.force && s.base != nil { // ForceNext: the commit of a rollback
		m.RestoredFrom = s.base.ID
	}
	return m
}

// commit renews the claim (recording its generation in m), stores the
// manifest and commits it in the claim.
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

func (s *Saver) commit(ctx context.Context, m *manifest.Manifest, start time.Time, fenced func() (uint64, error)) error {
	gen, err := fenced()
	if err != nil {
		return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	m.Writer.Generation = gen
	m.DurationMS = time.Since(start).Milliseconds()
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

// markCommitted records that save m, of the graph at generation gen,
// is committed: what the store has, what the session holds.
func (s *Saver) markCommitted(gen uint64, now time.Time, m *manifest.Manifest, u uploaded) {
	s.reuse, s.baseM, s.noForeign = &u.next, m, false
	s.lastGen, s.lastSHA, s.force = gen, u.content, false
	s.markSaved(gen, now)
	s.base = resultOf(m, false)
}

func (s *Saver) logSave(reason string, m *manifest.Manifest, durationMS int64) {
	s.cfg.Logger.Info("save",
		slog.String("session", s.cfg.Session), slog.String("reason", reason), slog.String("id", m.ID),
		slog.Int("nodes", m.NodeCount), slog.Int64("bytes_total", m.BytesTotal),
		slog.Int64("bytes_uploaded", m.BytesUploaded), slog.Int("chunks_uploaded", m.ChunksUploaded),
		slog.Int64("duration_ms", durationMS))
}
