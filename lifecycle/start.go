package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pitr-dev/pitr/clock"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// Options configure Start.
type Options struct {
	Store store.Store
	// StoreID names the store in the data dir's session.json (its String).
	StoreID string
	Session string
	DataDir string
	// NoRestore starts an empty session when the data dir is empty.
	NoRestore bool
	// ForceLocal serves a diverged data dir and saves it over the store's
	// newest save instead of setting it aside.
	ForceLocal bool
	// Adopt takes over a data dir of another store or session (Preload).
	Adopt bool
	// SkipCorrupt serves the newest intact committed save when the newest
	// is damaged, instead of failing start-up.
	SkipCorrupt bool
	// Local is the data dir's session as Preload read it; Start reads it
	// itself when nil.
	Local  *datadir.Local
	Logger *slog.Logger
	// Clock stamps what start-up writes into the data dir (session.json,
	// set-aside copies) and times Retry's waits unless it has its own
	// (default clock.Or(nil), the wall clock).
	Clock clock.Clock
	// Retry spaces attempts while the store cannot be read.
	Retry backoff.Policy
}

// State is the session a server starts with and what its saver must know.
type State struct {
	Session *session.Session
	// From is the save the session's content came from, if known.
	From *manifest.Manifest
	// Newest is the store's newest committed save, if any.
	Newest *manifest.Manifest
	// Dirty: the session holds changes the store lacks; save them.
	Dirty bool
	// RestoredFrom, when set, is a rollback written by pitr restore that
	// must be committed at once as a new save (reason "restored:<id>").
	RestoredFrom string
	// SetAside is the copy of a diverged data dir set aside at start-up.
	SetAside *datadir.Diverged
}

// Prime tells saver what the store already holds of the state.
func (s *State) Prime(saver *replicate.Saver) {
	if s.From != nil {
		saver.Prime(s.From)
	}
	if s.Newest != nil {
		saver.SetLast(s.Newest)
	}
	if s.Dirty {
		saver.MarkDirty()
	}
}

// CommitReason is the reason of the save to commit at once, or "".
func (s *State) CommitReason() string {
	if s.RestoredFrom == "" {
		return ""
	}
	return "restored:" + s.RestoredFrom
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Clock = clock.Or(o.Clock)
	if o.Retry.Clock == nil {
		o.Retry.Clock = o.Clock
	}
}

// dir is the data dir as start-up writes it.
func (o *Options) dir() datadir.Dir {
	return datadir.Dir{Path: o.DataDir, Session: o.Session, Store: o.StoreID, Clock: o.Clock}
}

// Start decides which state the server serves (see the package comment),
// setting a diverged data dir aside and restoring the store's newest save
// into the data dir where needed. The writer claim must be held.
func Start(ctx context.Context, o Options) (*State, error) {
	o.defaults()
	local := o.Local
	if local == nil {
		var err error
		if local, err = Preload(o); err != nil {
			return nil, err
		}
	}
	if local != nil {
		return startLocal(ctx, o, local)
	}
	if o.NoRestore {
		o.Logger.Info("data dir empty: starting an empty session (--no-restore)")
		return &State{Session: session.New()}, nil
	}
	newest, err := newestSave(ctx, o)
	if errors.Is(err, manifest.ErrNoSaves) {
		o.Logger.Info("no saves of this session in the store: starting an empty session")
		return &State{Session: session.New()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s is empty and the store cannot be read, so the session cannot be restored (use --no-restore to start empty): %w", o.DataDir, err)
	}
	o.Logger.Info("data dir empty: restoring the newest save", slog.String("save_id", newest.ID), slog.Time("save_time", newest.Time))
	return restoreNewest(ctx, o, newest)
}

// newestSave reads the session's newest committed save, waiting for the
// store with backoff while it fails with an error worth retrying (down,
// throttling): deciding what to serve on a guess could bury newer saves.
func newestSave(ctx context.Context, o Options) (*manifest.Manifest, error) {
	var m *manifest.Manifest
	err := o.Retry.Do(ctx, o.Logger, "cannot read the newest save", func() error {
		var err error
		m, err = catalog.Newest(ctx, o.Store, o.Session)
		if errors.Is(err, manifest.ErrNoSaves) || isCorrupt(err) {
			return backoff.Permanent(err)
		}
		return err
	})
	if isCorrupt(err) {
		if !o.SkipCorrupt {
			return nil, corruptError(err)
		}
		o.Logger.Warn("--skip-corrupt: the newest save is damaged; looking for the newest intact one", slog.String("error", err.Error()))
		return newestIntact(ctx, o)
	}
	return m, err
}

// restoreNewest fetches save newest into the data dir and starts from it.
func restoreNewest(ctx context.Context, o Options, newest *manifest.Manifest) (*State, error) {
	graph, g, _, err := restore.Fetch(ctx, o.Store, newest, restore.DefaultParallel, nil)
	if isCorrupt(err) && o.SkipCorrupt {
		o.Logger.Warn("--skip-corrupt: the newest save is damaged; looking for the newest intact one", slog.String("error", err.Error()))
		if newest, err = newestIntact(ctx, o); err != nil {
			return nil, err
		}
		graph, g, _, err = restore.Fetch(ctx, o.Store, newest, restore.DefaultParallel, nil)
	}
	if isCorrupt(err) {
		return nil, corruptError(err)
	}
	if err != nil {
		return nil, fmt.Errorf("restore newest save: %w", err)
	}
	if err := o.dir().Fetched(graph, g, saveOf(newest)); err != nil {
		return nil, err
	}
	return &State{Session: session.FromGraph(g), From: newest, Newest: newest}, nil
}

func startLocal(ctx context.Context, o Options, local *datadir.Local) (*State, error) {
	if foreign(local.Meta, o.StoreID, o.Session) {
		if !o.Adopt {
			return nil, fmt.Errorf("data dir %s holds %s, not %s (use --adopt)", o.DataDir, origin(local.Meta.Session, local.Meta.StoreURL), origin(o.Session, o.StoreID))
		}
		if err := adopt(o, local); err != nil {
			return nil, err
		}
	}
	s := &State{Session: session.FromGraph(local.Graph), Dirty: local.Dirty}
	o.Logger.Info("loaded data dir", slog.String("data_dir", o.DataDir), slog.String("save_id", local.Meta.SaveID), slog.Bool("pending", local.Dirty))
	newest, err := newestSave(ctx, o)
	switch {
	case errors.Is(err, manifest.ErrNoSaves):
		s.Dirty = true
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("find the newest save to compare the data dir with: %w", err)
	}
	s.Newest = newest
	base := local.Meta.SaveID
	rollback := local.Meta.Restored && (local.Meta.RestoredNewest == "" || local.Meta.RestoredNewest == newest.ID)
	if local.Meta.Restored && !rollback && base != newest.ID {
		o.Logger.Warn("the data dir was restored from save "+base+" when the newest save was "+local.Meta.RestoredNewest+
			", but the store's newest is now "+newest.ID+": the rollback is not committed over the saves made since (restore again to roll back)",
			slog.String("data_dir_save", base), slog.String("newest_save", newest.ID))
	}
	// Chunking the whole local graph: done once, here.
	same := replicate.SameContent(newest, local.Graph, local.GraphSHA256)
	switch {
	case same:
		// The newest save holds this very graph (perhaps committed just
		// before a crash kept session.json from saying so).
		s.From, s.Dirty = newest, false
		return s, foundAt(o, local, newest, same)
	case base == newest.ID:
		// On the newest save, perhaps with unsaved edits on top of it.
		s.From = newest
		if local.Meta.Restored {
			return s, foundAt(o, local, newest, same)
		}
		return s, nil
	case rollback:
		return startRollback(ctx, o, local, s)
	case o.SkipCorrupt:
		// The newest save may be damaged and this copy its only intact
		// form: keep it, whatever it holds, before serving an older save.
		return startDiverged(ctx, o, local, newest)
	case !local.Dirty:
		// A copy left from an earlier run, while another server saved
		// newer states: the store is ahead, so serve its newest save.
		o.Logger.Warn("data dir holds an older save than the store's newest and no unsaved changes: loading the newest save",
			slog.String("data_dir_save", base), slog.String("newest_save", newest.ID))
		return restoreNewest(ctx, o, newest)
	case base == "" && len(local.Graph.Nodes) == 0 && !local.Graph.Initialized:
		// A session that never held anything has nothing to keep.
		return restoreNewest(ctx, o, newest)
	case o.ForceLocal:
		return startForced(ctx, o, local, s)
	}
	return startDiverged(ctx, o, local, newest)
}

// foundAt records in session.json that the data dir is based on the newest
// save, and forgets that it was restored: otherwise a later start, after
// other servers saved, would take it for a rollback. Pending edits stay
// pending unless the graph is the newest save's (same).
func foundAt(o Options, local *datadir.Local, newest *manifest.Manifest, same bool) error {
	if !local.Meta.Restored && local.Meta.SaveID == newest.ID && (!local.Dirty || !same) {
		return nil
	}
	return o.dir().FoundAt(local, saveOf(newest), same)
}

// saveOf names save m in the data dir.
func saveOf(m *manifest.Manifest) datadir.Save { return datadir.Save{ID: m.ID, Time: m.Time} }

// startRollback serves a data dir written by pitr restore whose save is not
// the newest: the rollback is deliberate, so it is committed at once.
func startRollback(ctx context.Context, o Options, local *datadir.Local, s *State) (*State, error) {
	from, err := catalog.Load(ctx, o.Store, o.Session, local.Meta.SaveID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read the restored save %s to commit the rollback: %w", local.Meta.SaveID, err)
	}
	if err != nil {
		o.Logger.Warn("restored save not found in the store; saving the restored state anew",
			slog.String("save_id", local.Meta.SaveID), slog.String("error", err.Error()))
		s.Dirty = true
		return s, nil
	}
	s.From, s.RestoredFrom = from, local.Meta.SaveID
	return s, nil
}

// startForced serves a diverged data dir as --force-local asks: its state
// is saved as the newest, over the store's newer saves.
func startForced(ctx context.Context, o Options, local *datadir.Local, s *State) (*State, error) {
	o.Logger.Warn("--force-local: the data dir diverged from the store and its state will be saved as the newest, over newer saves",
		slog.String("data_dir_save", local.Meta.SaveID), slog.String("newest_save", s.Newest.ID))
	if local.Meta.SaveID != "" {
		if from, err := catalog.Load(ctx, o.Store, o.Session, local.Meta.SaveID); err == nil {
			s.From = from
		}
	}
	s.Dirty = true
	return s, nil
}

// startDiverged sets a diverged data dir aside and serves the store's
// newest save instead.
func startDiverged(ctx context.Context, o Options, local *datadir.Local, newest *manifest.Manifest) (*State, error) {
	d, err := o.dir().SetAside(datadir.DivergedInfo{
		Session: o.Session, Store: o.StoreID, BaseSave: local.Meta.SaveID, NewestSave: newest.ID,
		NodeCount: len(local.Graph.Nodes),
		Reason:    "the data dir holds unsaved edits made on a save that is not the store's newest committed save",
	})
	if err != nil {
		return nil, fmt.Errorf("set aside the diverged data dir (start with --force-local to save it over the store's newest save instead): %w", err)
	}
	base := local.Meta.SaveID
	if base == "" {
		base = "(never saved)"
	}
	o.Logger.Error("data dir diverged from the store: its unsaved edits were made on save "+base+", but the store's newest committed save is "+newest.ID+
		" (another server saved since). They were NOT saved: the copy is set aside and this server starts from "+newest.ID+
		". Inspect it with `pitr diverged show "+d.Name+"` and apply chosen nodes with `pitr diverged apply "+d.Name+" NODE...`",
		slog.String("set_aside", d.Path), slog.String("data_dir_save", local.Meta.SaveID), slog.String("newest_save", newest.ID))
	s, err := restoreNewest(ctx, o, newest)
	if err != nil {
		return nil, err
	}
	s.SetAside = d
	return s, nil
}
