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

// bundle leaves, after the sweep, one forward bundle (manifest.BundleIndex)
// holding a copy of every record in force the run read or wrote: the
// newest bundle if its index says it holds exactly those records, as
// stored, else a new one; the other bundles are deleted. A bundle is a
// copy for readers of older saves (they read a dozen records in one or a
// few requests); nothing gc decides depends on one, so failing to write
// or delete one is only a warning.
func bundle(ctx context.Context, st store.Store, ls listing, swept []store.ObjectInfo, fw *catalog.Forwards, l *lease, log io.Writer, rep *Report) error {
	gone := map[string]bool{}
	for _, o := range swept {
		gone[o.Key] = true
	}
	loaded := fw.Loaded()
	records := map[manifest.PackID][]byte{}
	for p, o := range ls.forwards {
		f := loaded[p]
		if gone[o.Key] || f == nil {
			continue // deleted, or a record no kept save needs (not read)
		}
		b, err := f.Encode()
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		records[p] = b
	}
	var newest store.ObjectInfo
	for _, b := range ls.bundles {
		if newest.Key == "" || b.ModTime.After(newest.ModTime) {
			newest = b
		}
	}
	warn := func(err error) error {
		if ctx.Err() != nil || errors.Is(err, ErrLeaseLost) {
			return err
		}
		logf(log, "gc: warning: %v\n", err)
		rep.BundleSkipped = err.Error()
		return nil
	}
	keep := ""
	switch {
	case len(records) == 0:
	case newest.Key != "" && holds(ctx, st, newest, records):
		keep = newest.Key
	default:
		if err := l.check(ctx); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		b, err := manifest.EncodeBundle(records)
		if err != nil {
			return warn(fmt.Errorf("bundle: %w", err))
		}
		key := manifest.BundleKey()
		if err := st.Put(ctx, key, b); err != nil {
			// The older bundles stay: readers take a copy only of a
			// record listed as older than its bundle.
			return warn(fmt.Errorf("write forward bundle %s (%d records, %d bytes): %w", key, len(records), len(b), err))
		}
		keep, rep.Bundled = key, len(records)
	}
	// A reader of a bundle deleted under it reads the records instead.
	for _, o := range ls.bundles {
		if o.Key == keep {
			continue
		}
		if err := l.check(ctx); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if err := st.Delete(ctx, o.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return warn(fmt.Errorf("delete forward bundle %s: %w", o.Key, err))
		}
	}
	return nil
}

// holds reports whether bundle b's index says it holds exactly records,
// each as encoded there (any failure to tell is a no).
func holds(ctx context.Context, st store.Store, b store.ObjectInfo, records map[manifest.PackID][]byte) bool {
	idx, _, err := catalog.ReadBundleIndex(ctx, st, b, false)
	return err == nil && idx.Holds(records)
}
