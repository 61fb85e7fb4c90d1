package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/session"
)

// Checkpoint folds the journal of dir into its graph: the journal's
// changes after session.json's journal_lsn are applied to graph.pitrg (or
// to an empty session when there is none yet), the result is written as
// pending, and the journal is removed. It reports how many changes it
// applied and, when the journal ended in a torn or corrupt record, a
// warning naming what was dropped (never an error: those changes were
// never acknowledged). Without a journal it does nothing.
func (d Dir) Checkpoint() (applied int, torn error, err error) {
	dir := d.Path
	meta, _, err := LoadMeta(dir)
	if err != nil {
		return 0, nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, journal.Dir)); errors.Is(err, fs.ErrNotExist) {
		return 0, nil, d.forgetBase(meta, meta.JournalLSN)
	}
	sess := session.New()
	has, err := HasSession(dir)
	if err != nil {
		return 0, nil, err
	}
	if has {
		l, err := Load(dir)
		if err != nil {
			return 0, nil, err
		}
		sess = session.FromGraph(l.Graph)
	}
	last, torn, err := journal.Replay(dir, meta.JournalLSN, func(op session.Op) error {
		applied++
		return sess.Apply(op)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("replay the journal of %s: %w", dir, err)
	}
	if applied > 0 {
		g := sess.Snapshot()
		// Changes after the base save's own are unsaved; those up to it
		// are the save's content.
		pending := meta.Pending || last > meta.SaveLSN
		graph := session.Encode(g)
		meta.Pending, meta.JournalLSN, meta.GraphSHA256 = pending, last, hashHex(graph)
		meta.Initialized, meta.NodeCount = g.Initialized, len(g.Nodes)
		if err := d.write(graph, meta); err != nil {
			return 0, nil, err
		}
	}
	if err := d.forgetBase(meta, max(last, meta.JournalLSN)); err != nil {
		return 0, nil, err
	}
	return applied, torn, journal.Remove(dir)
}

// forgetBase handles a data dir that holds less than its base save (its
// journal lost records up to meta.SaveLSN, at most upto survive): it no
// longer names a base, so start-up serves the store's newest save instead
// of taking this copy for it.
func (d Dir) forgetBase(meta Meta, upto uint64) error {
	if meta.SaveLSN <= upto || meta.SaveID == "" {
		return nil
	}
	meta.SaveID, meta.SaveTime, meta.SaveLSN, meta.Pending = "", nil, 0, false
	return d.writeMeta(meta)
}
