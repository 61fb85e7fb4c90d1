package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/chunker"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
)

// isCorrupt reports whether err says the store holds a damaged save (a
// manifest, chunk list, chunk or graph that does not decode or check out):
// waiting cannot fix it, unlike a store that does not answer.
func isCorrupt(err error) bool {
	return errors.Is(err, manifest.ErrInvalid) || errors.Is(err, manifest.ErrBadList) ||
		errors.Is(err, manifest.ErrNewerFormat) || errors.Is(err, chunker.ErrCorrupt) ||
		errors.Is(err, session.ErrCorrupt)
}

// corruptError says what to do about a damaged newest save.
func corruptError(err error) error {
	return fmt.Errorf("the store's newest save is damaged, so start-up cannot decide what to serve: %w; "+
		"run `pitr verify` to see what is damaged, then `pitr restore --at` an older save, or start with --skip-corrupt "+
		"to serve the newest intact committed save", err)
}

// newestIntact finds the newest committed save that reads and restores
// whole, newest first, logging each damaged one it skips (--skip-corrupt).
// It fetches each candidate completely, so it costs a restore per save it
// tries.
func newestIntact(ctx context.Context, o Options) (*manifest.Manifest, error) {
	refs, err := catalog.Refs(ctx, o.Store, o.Session)
	if err != nil {
		return nil, err
	}
	commits, err := claim.ReadCommits(ctx, o.Store, o.Session)
	if err != nil {
		return nil, err
	}
	for i := len(refs) - 1; i >= 0; i-- {
		m, err := catalog.Load(ctx, o.Store, o.Session, refs[i].ID)
		if err == nil && !commits.Committed(m) {
			continue
		}
		if err == nil {
			_, _, _, err = restore.Fetch(ctx, o.Store, m, restore.DefaultParallel, nil)
		}
		if err == nil {
			return m, nil
		}
		if !isCorrupt(err) {
			return nil, err
		}
		o.Logger.Warn("--skip-corrupt: skipping a damaged save", slog.String("save_id", refs[i].ID), slog.String("error", err.Error()))
	}
	return nil, fmt.Errorf("--skip-corrupt: no intact committed save of session %s: %w", o.Session, manifest.ErrNoSaves)
}
