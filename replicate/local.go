package replicate

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/session"
)

// DefaultCheckpointBytes is the least journal a save folds into the data
// dir's graph by default: below it (and below a quarter of the graph), a
// save writes only session.json and leaves the changes in the journal.
const DefaultCheckpointBytes = 64 << 20

// dir is the data dir as this saver writes it.
func (s *Saver) dir() datadir.Dir {
	return datadir.Dir{Path: s.cfg.DataDir, Session: s.cfg.Session, Store: s.cfg.StoreURL, Writer: s.cfg.Host, Clock: s.cfg.Clock}
}

// baseSave is the save the session's content was last written to the
// store as, for the data dir (nil: none).
func (s *Saver) baseSave() *datadir.Save {
	if s.base == nil {
		return nil
	}
	return &datadir.Save{ID: s.base.ID, Time: s.base.Time}
}

// writeLocally tells Config.OnPlan the size of the graph about to be
// uploaded, then makes the snapshot durable locally (localBefore): it
// survives a store outage and a crash. A local disk that fails does not
// stop the save: the store copy is what protects the session then.
func (s *Saver) writeLocally(ctx context.Context, a *attempt) {
	if s.cfg.OnPlan != nil {
		s.cfg.OnPlan(a.bytes)
	}
	a.localOK = s.localBefore(ctx, a.snap)
}

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
	// A rollback not committed yet stays one if this process dies first.
	return s.writeLocalOrWarn(snap, s.force)
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
	save := datadir.Save{ID: base.ID, Time: base.Time}
	if err := s.knowLocalFile(); err != nil {
		s.localFailed(err)
		return
	}
	if s.localFile == nil || (s.cfg.Journal != nil && s.cfg.Journal.Unreleased() >= max(s.cfg.CheckpointBytes, base.BytesTotal/4)) {
		// A checkpoint: due, or the data dir has no graph file yet. The
		// graph is encoded straight into the file, not into memory.
		s.checkpoint(snap, save)
		return
	}
	if err := s.dir().Saved(snap, save, *s.localFile); err != nil {
		s.localFailed(fmt.Errorf("save %s stored but data dir not updated: %w", base.ID, err))
	}
}

// knowLocalFile reads what the data dir's graph file holds, the first
// time (it stays unknown when there is none).
func (s *Saver) knowLocalFile() error {
	if s.localFile != nil {
		return nil
	}
	f, err := datadir.LoadFile(s.cfg.DataDir)
	s.localFile = f
	return err
}

// checkpoint records save in the data dir with the whole graph of snap,
// and releases the journal up to the snapshot.
func (s *Saver) checkpoint(snap *session.Graph, save datadir.Save) {
	f, err := s.dir().SavedCheckpoint(snap, save)
	if err != nil {
		s.localFailed(fmt.Errorf("save session %s: %w", s.cfg.Session, err))
		return
	}
	s.localFile = &f
	s.mu.Lock()
	s.localErr = ""
	s.mu.Unlock()
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Release(snap.JournalLSN); err != nil {
			s.cfg.Logger.Warn("could not release the journal", slog.String("error", err.Error()))
		}
	}
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

// writeLocalOrWarn writes the snapshot into the data dir as edits on the
// base save (writeLocal), recording a failure in the status, the log and
// the metrics instead of failing the save.
func (s *Saver) writeLocalOrWarn(snap *session.Graph, rollback bool) bool {
	if err := s.writeLocal(snap, rollback); err != nil {
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
	if err := s.writeLocal(snap, false); err != nil {
		return err
	}
	s.lastGen = snap.Gen
	return nil
}

// writeLocal writes the whole graph of snap into the data dir as edits on
// the base save (datadir.Dir.Edited), and releases the journal up to it.
func (s *Saver) writeLocal(snap *session.Graph, rollback bool) error {
	if s.cfg.DataDir == "" {
		return nil
	}
	f, err := s.dir().Edited(snap, s.baseSave(), rollback)
	if err != nil {
		return fmt.Errorf("save session %s: %w", s.cfg.Session, err)
	}
	s.localFile = &f
	if s.cfg.Journal != nil {
		if err := s.cfg.Journal.Release(f.JournalLSN); err != nil {
			// The journal only holds more than it needs to.
			s.cfg.Logger.Warn("could not release the journal", slog.String("error", err.Error()))
		}
	}
	return nil
}
