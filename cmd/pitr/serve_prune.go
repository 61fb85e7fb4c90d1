package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/retention"
	"github.com/pitr-dev/pitr/store"
)

// pruner applies serve's retention policy in its own goroutine, woken after
// saves, so that pruning never slows a save. It prunes at most once per
// --prune-interval; an empty policy (any --keep-* flag set to 0 alone) or a
// zero interval turns it off.
type pruner struct {
	policy  retention.Policy
	every   time.Duration
	st      store.Store
	session string
	log     *slog.Logger
	wake    chan struct{}
}

func newPruner(o *serveOptions, st store.Store, log *slog.Logger) *pruner {
	return &pruner{policy: o.keep, every: o.pruneEvery, st: st, session: o.session, log: log, wake: make(chan struct{}, 1)}
}

// saved is the saver's OnSaved hook: it never blocks.
func (p *pruner) saved(replicate.Result) {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pruner) run(ctx context.Context, saver *replicate.Saver) {
	if p.every <= 0 || p.policy.IsZero() {
		p.log.Info("retention off: saves are kept until pitr prune removes them")
		return
	}
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
		if wait := p.every - wall.Since(last); !last.IsZero() && wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-wall.After(wait):
			}
		}
		if st := saver.Status(); st.LastError != "" {
			continue // fenced or failing: leave the history alone
		}
		last = wall.Now()
		res, err := retention.Prune(ctx, p.st, p.session, p.policy, time.Local, false)
		if err != nil {
			p.log.Warn("prune failed", slog.String("session", p.session), slog.String("error", err.Error()))
			continue
		}
		if res.Removed > 0 {
			p.log.Info("pruned", slog.String("session", p.session), slog.String("policy", p.policy.String()),
				slog.Int("kept", res.Kept), slog.Int("removed", res.Deleted))
		}
	}
}
