package gc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

// bundle writes, after the sweep, a forward bundle (manifest.BundleIndex)
// of every record in force that the run read or wrote, when the records
// changed since the newest bundle (or there is none), then deletes the
// bundles listed before. A bundle is a copy for readers of older saves
// (they read a dozen records in two or three requests); nothing gc decides
// depends on it, so failing to write one is only a warning.
func bundle(ctx context.Context, st store.Store, ls listing, swept []store.ObjectInfo, fw *catalog.Forwards, l *lease, log io.Writer, rep *Report) error {
	gone := map[string]bool{}
	for _, o := range swept {
		gone[o.Key] = true
	}
	loaded := fw.Loaded()
	records := map[manifest.PackID][]byte{}
	var newest store.ObjectInfo
	for _, b := range ls.bundles {
		if b.ModTime.After(newest.ModTime) {
			newest = b
		}
	}
	stale := newest.Key == "" || rep.Repacked > 0 || rep.ForwardsRewritten > 0
	for p, o := range ls.forwards {
		if gone[o.Key] {
			stale = true // a record the newest bundle may hold is deleted
			continue
		}
		if !o.ModTime.IsZero() && !o.ModTime.Before(newest.ModTime) {
			stale = true // written since (or by a run that wrote no bundle)
		}
		f := loaded[p]
		if f == nil {
			continue // not read: a record no kept save needs
		}
		b, err := f.Encode()
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		records[p] = b
	}
	if !stale || len(records) == 0 && len(ls.bundles) == 0 {
		return nil
	}
	if err := l.check(ctx); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if len(records) > 0 {
		b, err := manifest.EncodeBundle(records)
		if err == nil {
			key := manifest.BundleKey()
			if err = st.Put(ctx, key, b); err != nil {
				err = fmt.Errorf("write forward bundle %s (%d records, %d bytes): %w", key, len(records), len(b), err)
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrLeaseLost) {
				return err
			}
			logf(log, "gc: warning: %v\n", err)
			rep.BundleSkipped = err.Error()
			return nil // the older bundles stay: readers check each copy's age
		}
		rep.Bundled = len(records)
	}
	// A reader of a bundle deleted under it reads the records instead.
	for _, o := range ls.bundles {
		if err := st.Delete(ctx, o.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete forward bundle %s: %w", o.Key, err)
		}
	}
	return nil
}
