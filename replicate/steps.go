package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// The steps of a save (Saver.save): upload, build the manifest, commit it,
// mark it committed, log it.

// loadBase returns what the next save may reuse: the chunks and tree
// nodes of the base save, loaded from the store the first time (one read
// per tree level). The saver relies only on the packs of the store's newest
// committed save, which no gc deletes (package gc): after a rollback, or
// when the base is a format 1 save or cannot be read, it reuses nothing
// and the save uploads every chunk.
func (s *Saver) loadBase(ctx context.Context) based {
	if s.reuse != nil {
		return *s.reuse
	}
	empty := based{}
	s.mu.Lock()
	newest := s.last
	s.mu.Unlock()
	m := s.baseM
	if m == nil || m.Tree == nil || s.force || newest == nil || newest.ID != m.ID {
		return empty
	}
	b := based{data: map[chunker.ID]manifest.Loc{}, nodes: map[chunker.ID]manifest.Loc{}, packs: m.Packs}
	entries, err := catalog.Entries(ctx, s.cfg.Store, m, func(n catalog.Node) { b.nodes[n.ID] = n.Loc })
	if err != nil {
		s.cfg.Logger.Warn("cannot read the base save's chunk tree; this save uploads every chunk",
			slog.String("save_id", m.ID), slog.String("error", err.Error()))
		return empty
	}
	for _, e := range entries {
		b.data[e.ID] = e.Loc
	}
	s.reuse = &b
	return b
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
func (s *Saver) commit(ctx context.Context, m *manifest.Manifest, start time.Time) error {
	if s.cfg.Fence != nil {
		gen, err := s.cfg.Fence(ctx)
		if err != nil {
			return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
		}
		m.Writer.Generation = gen
	}
	m.DurationMS = time.Since(start).Milliseconds()
	if err := manifest.Put(ctx, s.cfg.Store, m); err != nil {
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
	s.reuse, s.baseM = &u.next, m
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
