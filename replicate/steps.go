package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
)

// The steps of a save (Saver.save): upload, build the manifest, commit it,
// mark it committed, log it.

// uploaded is what a save put in the store before its manifest.
type uploaded struct {
	chunks, lists []chunker.Chunk
	data, list    uploadStats
}

// upload cuts the graph's records into chunks and uploads those the store
// lacks, then the chunk list.
func (s *Saver) upload(ctx context.Context, records [][]byte, fresh time.Time) (uploaded, error) {
	u := uploaded{chunks: chunker.SplitRecords(records)}
	var err error
	if u.data, err = uploadMissing(ctx, s.cfg.Store, u.chunks, s.known, fresh, s.cfg.Now, s.cfg.Parallel); err != nil {
		return u, fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	entries := make([]manifest.Entry, len(u.chunks))
	for i, c := range u.chunks {
		entries[i] = manifest.Entry{ID: c.ID, Size: int64(len(c.Data))}
	}
	u.lists = manifest.EncodeList(entries)
	if u.list, err = uploadMissing(ctx, s.cfg.Store, u.lists, s.known, fresh, s.cfg.Now, s.cfg.Parallel); err != nil {
		return u, fmt.Errorf("save session %s: chunk list: %w", s.cfg.Session, err)
	}
	return u, nil
}

// buildManifest describes the save of snap at now.
func (s *Saver) buildManifest(now time.Time, reason string, snap *session.Graph, graph []byte, graphSHA string, u uploaded) *manifest.Manifest {
	m := &manifest.Manifest{
		FormatVersion:  manifest.FormatList,
		Session:        s.cfg.Session,
		ID:             manifest.NewID(now),
		Time:           now,
		Reason:         reason,
		Initialized:    snap.Initialized,
		NodeCount:      len(snap.Nodes),
		BytesTotal:     int64(len(graph)),
		BytesUploaded:  u.data.bytes + u.list.bytes,
		ChunksTotal:    len(u.chunks) + len(u.lists),
		ChunksUploaded: u.data.chunks + u.list.chunks,
		GraphSHA256:    graphSHA,
		Writer:         manifest.Writer{Host: s.cfg.Host},
	}
	if from, ok := strings.CutPrefix(reason, "restored:"); ok {
		m.RestoredFrom = from
	}
	m.ChunkList = manifest.ChunkList{Format: manifest.ListFormat, Entries: len(u.chunks)}
	for _, c := range u.lists {
		m.ChunkList.Chunks = append(m.ChunkList.Chunks, manifest.ListChunk{ID: c.ID, Size: int64(len(c.Data))})
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
func (s *Saver) markCommitted(gen uint64, graphSHA string, now time.Time, m *manifest.Manifest, u uploaded) {
	s.known = u.data.modTimes
	maps.Copy(s.known, u.list.modTimes)
	s.lastGen, s.lastSHA, s.force = gen, graphSHA, false
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
