package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/store"
)

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tuneGC()
	fs, c := newFlags("restore", stderr)
	var (
		at      string
		saveID  string
		dataDir string
		force   bool
	)
	fs.StringVar(&at, "at", "", "what to restore: a time (RFC 3339, or 'YYYY-MM-DDTHH:MM[:SS]' or 'YYYY-MM-DD HH:MM' in local time, TZ), 'latest', or a save id as pitr saves prints it")
	fs.StringVar(&saveID, "save", "", "the save to restore, by id as pitr saves prints it (instead of --at)")
	fs.StringVar(&dataDir, "data-dir", "pitr-data/session", "data dir to write the session into")
	fs.BoolVar(&force, "force", false, "replace a session already in --data-dir")
	quiet := fs.Bool("quiet", false, "show no progress")
	if err := parse(fs, args); err != nil {
		return err
	}
	tg, err := parseTarget(at, saveID)
	if err != nil {
		return err
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	m, err := tg.choose(ctx, st, c.session)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "save %s taken %s (%s local), reason %s, %s, %s\n",
		m.ID, manifest.FormatTime(m.Time), m.Time.Local().Format(manifest.TimeLayout),
		m.Reason, plural(m.NodeCount, "node"), humanBytes(m.BytesTotal))
	limitMemory(m.BytesTotal, 1)
	progress, finish := newProgress(stderr, "restoring", "bytes", *quiet)
	defer finish()
	toDir := restore.ToDir
	if tg.latest {
		toDir = restore.NewestToDir
	}
	aside, err := toDir(ctx, st, m, dataDir, force, st.String(), progress)
	if err != nil {
		return err
	}
	if aside != nil {
		fmt.Fprintf(stdout, "the session it replaced held unsaved edits: set aside as %s (pitr diverged show %s)\n", aside.Path, aside.Name)
	}
	fmt.Fprintf(stdout, "restored into %s; start it with: pitr serve --data-dir %s --session %s\n", dataDir, dataDir, c.session)
	return nil
}

// target is the save a restore asks for: one by id, the newest at or
// before a time, or the newest.
type target struct {
	id     string
	at     string // as given, for messages
	t      time.Time
	latest bool
}

// parseTarget reads --at (a time, "latest" or a save id) and --save (a save
// id); exactly one of them must be given.
func parseTarget(at, saveID string) (target, error) {
	switch {
	case at != "" && saveID != "":
		return target{}, usageError{errors.New("restore: --at and --save exclude each other; give one (PITR_AT and PITR_SAVE count too)")}
	case at == "" && saveID == "":
		return target{}, usageError{errors.New("restore: --at TIME (a time, 'latest' or a save id) or --save ID is required")}
	case saveID != "":
		if _, err := manifest.IDTime(saveID); err != nil {
			return target{}, usageError{fmt.Errorf("--save: %w", err)}
		}
		return target{id: saveID}, nil
	}
	if _, err := manifest.IDTime(at); err == nil {
		return target{id: at}, nil
	}
	t, latest, err := manifest.ParseAt(at, time.Local)
	if err != nil {
		return target{}, usageError{fmt.Errorf("--at: %w, or a save id (20250112T153445.123Z-1a2b3c)", err)}
	}
	return target{at: at, t: t, latest: latest}, nil
}

// choose finds the save tg names among the committed saves of session.
func (tg target) choose(ctx context.Context, st store.Store, session string) (*manifest.Manifest, error) {
	if tg.id != "" {
		m, err := catalog.LoadCommitted(ctx, st, session, tg.id)
		if err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		return m, nil
	}
	m, err := restore.Choose(ctx, st, session, tg.t, tg.latest)
	if err != nil {
		return nil, fmt.Errorf("restore session %s at %s: %w", session, tg.at, err)
	}
	return m, nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
