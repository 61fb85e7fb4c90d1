package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

// CheckOwner makes sure the session in dataDir came from the store named
// storeID (storeurl.Identity) and the session sessionName before anything
// touches either: a data dir pushed into another store would be saved there
// as if it were that store's session. With adopt, a foreign data dir is
// taken over deliberately: its session.json is rewritten to name the new
// store and session, its state marked as never saved there (so it is saved
// into an empty store, and set aside like any diverged copy if the store
// already holds saves of the session, unless --force-local). A data dir with
// no session, or one written before session.json named its store, passes.
func CheckOwner(dataDir, storeID, sessionName string, adopt bool, log *slog.Logger) error {
	meta, ok, err := datadir.LoadMeta(dataDir)
	if err != nil || !ok {
		return err
	}
	otherSession := meta.Session != "" && meta.Session != sessionName
	otherStore := meta.StoreURL != "" && !storeurl.SameStore(meta.StoreURL, storeID)
	if !otherSession && !otherStore {
		return nil
	}
	from := fmt.Sprintf("session %q of store %s", meta.Session, meta.StoreURL)
	to := fmt.Sprintf("session %q of store %s", sessionName, storeID)
	if !adopt {
		return fmt.Errorf("data dir %s holds %s, not %s: refusing to mix them (use another --data-dir, fix --store/--session, or start with --adopt to move this data dir into %s deliberately)",
			dataDir, from, to, to)
	}
	log.Warn("--adopt: the data dir moves to another store or session; its state will be saved there",
		slog.String("data_dir", dataDir), slog.String("from", from), slog.String("to", to))
	meta.Session, meta.StoreURL = sessionName, storeID
	meta.SaveID, meta.SaveTime, meta.Pending, meta.Restored = "", nil, true, false
	meta.Updated = time.Time{}
	return datadir.WriteMeta(dataDir, meta)
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
