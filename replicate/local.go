package replicate

import (
	"fmt"
	"log/slog"

	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/session"
)

// writeMeta rewrites only session.json: the graph file already holds the
// saved content.
func (s *Saver) writeMeta(meta datadir.Meta) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	return datadir.WriteMeta(s.cfg.DataDir, meta)
}

// writeLocalOrWarn writes the data dir, recording a failure in the status,
// the log and the metrics instead of failing the save.
func (s *Saver) writeLocalOrWarn(graph []byte, meta datadir.Meta) bool {
	err := s.writeLocal(graph, meta)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.localErr = ""
		return true
	}
	s.localErr = err.Error()
	s.cfg.Logger.Error("cannot write the local data dir; saving to the store anyway", slog.String("error", err.Error()))
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.localFailures.Inc()
	}
	return false
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
	if err := datadir.Write(s.cfg.DataDir, graph, meta); err != nil {
		return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Release(meta.JournalLSN); err != nil {
			// The journal only holds more than it needs to.
			s.cfg.Logger.Warn("could not release the journal", slog.String("error", err.Error()))
		}
	}
	return nil
}
