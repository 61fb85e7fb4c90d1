package retention

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/store"
)

// deleteParallel bounds the manifest deletions Prune runs at once.
const deleteParallel = 8

// Result is what Prune decided and did.
type Result struct {
	Session string
	Policy  Policy
	DryRun  bool
	// Decisions has one entry per save, oldest first.
	Decisions []Decision
	// Kept and Removed count the decisions (Removed: would be removed,
	// under DryRun).
	Kept, Removed int
	// Deleted counts the manifests actually deleted: Removed after a
	// complete run, 0 under DryRun, fewer when Prune failed.
	Deleted int
}

// Prune applies p to the saves of session in st: it lists the saves from
// their keys (one listing, no manifest reads), decides with Apply (buckets
// in loc, time.Local when nil), and unless dryRun deletes the manifests of
// the saves no rule keeps, up to 8 at once: one DELETE per removed save.
// Chunks stay until gc. A policy with no rule is refused (ErrNoPolicy).
//
// Prune is safe while a server saves the session: saves committed after
// the listing are newer than every listed save and are not touched, and
// the newest listed save is always kept. Deleting is idempotent, so a failed
// or interrupted prune is finished by running it again. On failure it stops
// at the first error; the Result tells how many manifests it deleted.
func Prune(ctx context.Context, st store.Store, session string, p Policy, loc *time.Location, dryRun bool) (Result, error) {
	res := Result{Session: session, Policy: p, DryRun: dryRun}
	if err := p.Validate(); err != nil {
		return res, fmt.Errorf("prune session %q: %w", session, err)
	}
	if p.IsZero() {
		return res, fmt.Errorf("prune session %q: %w", session, ErrNoPolicy)
	}
	refs, err := catalog.Refs(ctx, st, session)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	saves := make([]Save, len(refs))
	for i, r := range refs {
		saves[i] = Save{ID: r.ID, Time: r.Time}
	}
	res.Decisions = Apply(saves, p, loc)
	// The newest listed manifest may be a save still being committed, or one
	// a fenced writer stored; the newest save the writer claim committed is
	// kept as well, whatever the policy says.
	commits, err := claim.ReadCommits(ctx, st, session)
	if err != nil {
		return res, fmt.Errorf("prune: %w", err)
	}
	if last := commits.LastCommitted(); last != "" {
		for i := range res.Decisions {
			if d := &res.Decisions[i]; d.ID == last && !d.Keep {
				d.Keep, d.Reasons = true, append(d.Reasons, "newest committed")
			}
		}
	}
	var remove []string
	for _, d := range res.Decisions {
		if d.Keep {
			res.Kept++
		} else {
			remove = append(remove, d.ID)
		}
	}
	res.Removed = len(remove)
	if dryRun || len(remove) == 0 {
		return res, nil
	}
	n, err := deleteAll(ctx, st, session, remove)
	res.Deleted = n
	if err != nil {
		return res, fmt.Errorf("prune session %q: deleted %d of %d saves, then: %w", session, n, len(remove), err)
	}
	return res, nil
}

// deleteAll deletes the manifests of ids with deleteParallel workers,
// stopping at the first error. It returns how many it deleted.
func deleteAll(ctx context.Context, st store.Store, session string, ids []string) (int, error) {
	var deleted atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteParallel)
	for _, id := range ids {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if err := catalog.Delete(gctx, st, session, id); err != nil {
				return err
			}
			deleted.Add(1)
			return nil
		})
	}
	err := g.Wait()
	if err == nil && int(deleted.Load()) < len(ids) {
		err = ctx.Err()
	}
	return int(deleted.Load()), err
}
