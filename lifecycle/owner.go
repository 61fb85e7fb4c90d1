package lifecycle

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

// Preload reads the session in o.DataDir, if any (nil when there is none),
// before the server takes the writer claim, so that a data dir that cannot
// serve fails start-up before --takeover fences a live holder. It also makes
// sure the session came from the store named o.StoreID (storeurl.Identity)
// and the session o.Session: a data dir pushed into another store would
// be saved there as if it were that store's session. With o.Adopt, a foreign
// data dir passes, and Start takes it over. A data dir written before
// session.json named its store passes. Preload refuses before it writes
// anything; then it folds the journal of acknowledged edits into the data
// dir's graph (datadir.Dir.Checkpoint), so that every decision of Start, setting
// a diverged copy aside included, sees them.
func Preload(o Options) (*datadir.Local, error) {
	o.defaults()
	dataDir, storeID, sessionName, log := o.DataDir, o.StoreID, o.Session, o.Logger
	meta, ok, err := datadir.LoadMeta(dataDir)
	if err != nil {
		return nil, err
	}
	if ok && foreign(meta, storeID, sessionName) && !o.Adopt {
		return nil, fmt.Errorf("data dir %s holds %s, not %s: refusing to mix them (use another --data-dir, fix --store/--session, or start with --adopt to move this data dir there deliberately)",
			dataDir, origin(meta.Session, meta.StoreURL), origin(sessionName, storeID))
	}
	applied, torn, err := o.dir().Checkpoint()
	if err != nil {
		return nil, err
	}
	if torn != nil {
		log.Warn("the journal ended in a torn or corrupt record (a crash in the middle of a write); it was dropped: it had not been acknowledged",
			slog.String("data_dir", dataDir), slog.String("detail", torn.Error()))
	}
	if applied > 0 {
		log.Info("replayed the journal into the data dir", slog.String("data_dir", dataDir), slog.Int("changes", applied))
	}
	has, err := datadir.HasSession(dataDir)
	if err != nil || !has {
		return nil, err
	}
	return datadir.Load(dataDir)
}

// foreign reports whether meta names another session or store.
func foreign(meta datadir.Meta, storeID, sessionName string) bool {
	return (meta.Session != "" && meta.Session != sessionName) ||
		(meta.StoreURL != "" && !storeurl.SameStore(meta.StoreURL, storeID))
}

func origin(sessionName, storeID string) string {
	return fmt.Sprintf("session %q of store %s", sessionName, storeID)
}

// adopt takes over a foreign data dir (--adopt): its session.json is
// rewritten to name this store and session, its state marked as never saved
// here, so that it is saved into a store without saves of the session and
// set aside like any diverged copy when the store has some (unless
// --force-local).
func adopt(o Options, local *datadir.Local) error {
	o.Logger.Warn("--adopt: the data dir moves to another store or session; its state will be saved there",
		slog.String("data_dir", o.DataDir), slog.String("from", origin(local.Meta.Session, local.Meta.StoreURL)),
		slog.String("to", origin(o.Session, o.StoreID)))
	return o.dir().Adopted(local)
}

// OpenStore opens the store with open, waiting with backoff (each retry
// logged) while it cannot be reached; a store error retrying cannot fix (bad
// credentials, access denied) and any error for which retryable says no
// fail at once.
func OpenStore(ctx context.Context, p backoff.Policy, log *slog.Logger, retryable func(error) bool, open func(context.Context) (store.Store, error)) (store.Store, error) {
	var st store.Store
	err := p.Do(ctx, log, "cannot reach the store", func() error {
		var err error
		st, err = open(ctx)
		if err != nil && !retryable(err) {
			return backoff.Permanent(err)
		}
		return err
	})
	return st, err
}
