// Package restore brings a save back: it chooses the save for a time, reads
// its graph through the catalog (package catalog: the chunk tree, then the
// chunks by ranged reads of their packs, every hash checked), and installs
// it into a data dir all at once.
package restore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// DefaultParallel is how many reads run at once by default.
const DefaultParallel = catalog.DefaultParallel

// Choose returns the save to restore: the newest one (latest) or the newest
// taken at or before at.
func Choose(ctx context.Context, st store.Store, sessionName string, at time.Time, latest bool) (*manifest.Manifest, error) {
	if latest {
		return catalog.Newest(ctx, st, sessionName)
	}
	return catalog.At(ctx, st, sessionName, at)
}

// Progress is told the bytes of the graph fetched so far, and the total.
type Progress = catalog.Progress

// Fetch reads save m's graph through the catalog (every chunk checked
// against its id, the whole against the manifest) and decodes it. It
// returns the encoded graph, the decoded graph (whose nodes' data are
// slices of the encoded graph, which must therefore not be changed) and
// the save's chunks.
func Fetch(ctx context.Context, st store.Store, m *manifest.Manifest, parallel int, progress Progress) ([]byte, *session.Graph, []manifest.Entry, error) {
	graph, entries, err := catalog.Graph(ctx, st, m, parallel, progress)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := session.DecodeShared(graph) // the nodes' data stays in graph: no second copy
	if err != nil {
		return nil, nil, nil, fmt.Errorf("save %s: %w", m.ID, err)
	}
	return graph, g, entries, nil
}

// ToDir restores save m into dir, replacing a session there only if force
// (one holding unsaved edits is set aside first and returned, see
// datadir.Dir.Restored). On any failure dir is left as it was.
func ToDir(ctx context.Context, st store.Store, m *manifest.Manifest, dir string, force bool, storeURL string, progress Progress) (*datadir.Diverged, error) {
	return toDir(ctx, st, m, false, dir, force, storeURL, progress)
}

// NewestToDir is ToDir for a save m just found to be the newest committed
// save (restore --at latest): it skips finding the newest again.
func NewestToDir(ctx context.Context, st store.Store, m *manifest.Manifest, dir string, force bool, storeURL string, progress Progress) (*datadir.Diverged, error) {
	return toDir(ctx, st, m, true, dir, force, storeURL, progress)
}

func toDir(ctx context.Context, st store.Store, m *manifest.Manifest, isNewest bool, dir string, force bool, storeURL string, progress Progress) (*datadir.Diverged, error) {
	if !force {
		// fail before downloading anything
		if has, err := datadir.HasSession(dir); err != nil {
			return nil, err
		} else if has {
			return nil, fmt.Errorf("%s already holds a session (use --force to replace it): %w", dir, datadir.ErrExists)
		}
	}
	// The newest committed save now: the rollback stands only while it is
	// still the newest. When it cannot be read (a damaged newest save is a
	// reason to restore an older one), the rollback stands regardless. It
	// is found while the graph is read.
	newestID := ""
	var newestErr error
	found := make(chan struct{})
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	if isNewest {
		newestID = m.ID
		close(found)
	} else {
		go func() {
			defer close(found)
			newest, err := catalog.Newest(ctx, st, m.Session)
			switch {
			case err == nil:
				newestID = newest.ID
			case errors.Is(err, manifest.ErrInvalid), errors.Is(err, manifest.ErrBadList), errors.Is(err, manifest.ErrNewerFormat):
			default:
				newestErr = fmt.Errorf("restore: find the newest save of session %s: %w", m.Session, err)
				stopRead() // the restore fails: read no more of the graph
			}
		}()
	}
	// A save restored by time may name packs gc repacked (gc anchors the
	// newest save's packs, but for a rollback's): list the forward records
	// first.
	graph, _, err := catalog.GraphWith(readCtx, st, m, catalog.GraphOptions{Parallel: DefaultParallel, Progress: progress, Older: !isNewest})
	<-found
	if newestErr != nil {
		return nil, newestErr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	g, err := session.Check(graph) // sound, without a second copy of the data
	if err != nil {
		return nil, fmt.Errorf("restore: save %s: %w", m.ID, err)
	}
	d := datadir.Dir{Path: dir, Session: m.Session, Store: storeURL}
	unlock, err := datadir.Lock(dir)
	if err != nil {
		return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
	}
	defer unlock()
	if force {
		// Journaled edits count as unsaved edits: fold them in, so that
		// Install sets them aside with the rest.
		if _, _, err := d.Checkpoint(); err != nil {
			return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
		}
	}
	aside, err := d.Restored(graph, g, datadir.Save{ID: m.ID, Time: m.Time}, newestID, force)
	if err != nil {
		return nil, fmt.Errorf("restore save %s: %w", m.ID, err)
	}
	return aside, nil
}

// forEach runs fn(i) for i in [0,n) with at most parallel at once, stopping
// at the first error.
