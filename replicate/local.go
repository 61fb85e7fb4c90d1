package replicate

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/session"
)

// DefaultCheckpointBytes is the least journal a save folds into the data
// dir's graph by default: below it (and below a quarter of the graph), a
// save writes only session.json and leaves the changes in the journal.
const DefaultCheckpointBytes = 64 << 20

// localBefore makes the snapshot durable locally before it is uploaded.
// With a journal it already is once the journal has synced every change
// the snapshot holds (the save waits for that, so that the data dir never
// claims a save holds changes its journal lost); without one, the whole
// graph is written as pending.
func (s *Saver) localBefore(ctx context.Context, snap *session.Graph) bool {
	if s.cfg.DataDir == "" {
		return true
	}
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Wait(ctx, snap.JournalLSN); err != nil {
			s.localFailed(fmt.Errorf("save session %s: sync the journal: %w", s.cfg.Session, err))
			return false
		}
		return true
	}
	graph := session.Encode(snap)
	return s.writeLocalOrWarn(graph, s.localMeta(snap, chunker.Sum(graph).String()))
}

// recordLocal records in the data dir that its state up to snap is save
// base. When a checkpoint is due (the journal holds more than
// max(Config.CheckpointBytes, a quarter of the graph)), the whole graph is written
// and the journal released; otherwise only session.json, and the graph
// file stays as it was, the journal holding the changes since.
func (s *Saver) recordLocal(snap *session.Graph, base *Result) {
	if s.cfg.DataDir == "" || base == nil {
		return
	}
	meta := s.localMeta(snap, "")
	meta.SaveID, meta.SaveTime, meta.SaveLSN, meta.Pending, meta.Restored = base.ID, &base.Time, snap.JournalLSN, false, false
	if s.localFile == nil {
		cur, _, err := datadir.LoadMeta(s.cfg.DataDir)
		if err != nil {
			s.localFailed(err)
			return
		}
		if _, err := os.Stat(filepath.Join(s.cfg.DataDir, datadir.GraphFile)); err == nil {
			s.localFile = &localFile{sha: cur.GraphSHA256, lsn: cur.JournalLSN}
		}
	}
	if s.localFile == nil || (s.cfg.Journal != nil && s.cfg.Journal.Unreleased() >= max(s.cfg.CheckpointBytes, base.BytesTotal/4)) {
		// A checkpoint: due, or the data dir has no graph file yet. The
		// graph is encoded straight into the file, not into memory.
		s.checkpoint(snap, meta)
		return
	}
	meta.GraphSHA256, meta.JournalLSN = s.localFile.sha, s.localFile.lsn
	if err := datadir.WriteMeta(s.cfg.DataDir, meta); err != nil {
		s.localFailed(fmt.Errorf("save %s stored but data dir not updated: %w", base.ID, err))
	}
}

// checkpoint writes the whole graph of snap and meta, and releases the
// journal up to the snapshot.
func (s *Saver) checkpoint(snap *session.Graph, meta datadir.Meta) {
	meta.JournalLSN = snap.JournalLSN
	sha, err := datadir.WriteGraph(s.cfg.DataDir, func(w io.Writer) error { return session.EncodeTo(w, snap) }, meta)
	if err != nil {
		s.localFailed(fmt.Errorf("save session %s: %w", s.cfg.Session, err))
		return
	}
	s.localFile = &localFile{sha: sha, lsn: meta.JournalLSN}
	s.mu.Lock()
	s.localErr = ""
	s.mu.Unlock()
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Release(snap.JournalLSN); err != nil {
			s.cfg.Logger.Warn("could not release the journal", slog.String("error", err.Error()))
		}
	}
}

// localFile is what the data dir's graph file holds: its hash and the last
// journaled change in it.
type localFile struct {
	sha string
	lsn uint64
}

// localFailed records a failure to write the data dir in the status, the
// log and the metrics.
func (s *Saver) localFailed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.localErr = err.Error()
	s.cfg.Logger.Error("cannot write the local data dir; saving to the store anyway", slog.String("error", err.Error()))
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.localFailures.Inc()
	}
}

// writeLocalOrWarn writes the data dir, recording a failure in the status,
// the log and the metrics instead of failing the save.
func (s *Saver) writeLocalOrWarn(graph []byte, meta datadir.Meta) bool {
	if err := s.writeLocal(graph, meta); err != nil {
		s.localFailed(err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.localErr = ""
	return true
}

// keepLocal writes edits made since the last save into the data dir as
// pending, for a fenced saver that can no longer save them: the next start
// on this data dir sets them aside (package lifecycle) for an operator to
// apply, instead of losing them.
func (s *Saver) keepLocal() error {
	snap := s.sess.Snapshot()
	if snap.Gen == s.lastGen || s.cfg.DataDir == "" {
		return nil
	}
	graph := session.Encode(snap)
	meta := datadir.Meta{Session: s.cfg.Session, Initialized: snap.Initialized, NodeCount: len(snap.Nodes), Pending: true,
		StoreURL: s.cfg.StoreURL, Writer: s.cfg.Host, JournalLSN: snap.JournalLSN}
	if s.base != nil {
		meta.SaveID, meta.SaveTime = s.base.ID, &s.base.Time
	}
	if err := s.writeLocal(graph, meta); err != nil {
		return err
	}
	s.lastGen = snap.Gen
	return nil
}

func (s *Saver) writeLocal(graph []byte, meta datadir.Meta) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	if meta.GraphSHA256 == "" {
		meta.GraphSHA256 = chunker.Sum(graph).String()
	}
	if err := datadir.Write(s.cfg.DataDir, graph, meta); err != nil {
		return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	s.localFile = &localFile{sha: meta.GraphSHA256, lsn: meta.JournalLSN}
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Release(meta.JournalLSN); err != nil {
			// The journal only holds more than it needs to.
			s.cfg.Logger.Warn("could not release the journal", slog.String("error", err.Error()))
		}
	}
	return nil
}
