package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/restore"
)

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("restore", stderr)
	var (
		at      string
		dataDir string
		force   bool
	)
	fs.StringVar(&at, "at", "", "time to restore: RFC 3339, 'YYYY-MM-DDTHH:MM[:SS]' or 'YYYY-MM-DD HH:MM' in local time (TZ), or 'latest'")
	fs.StringVar(&dataDir, "data-dir", "pitr-data/session", "data dir to write the session into")
	fs.BoolVar(&force, "force", false, "replace a session already in --data-dir")
	if err := parse(fs, args); err != nil {
		return err
	}
	if at == "" {
		return usageError{errors.New("restore: --at is required (a time, or 'latest')")}
	}
	t, latest, err := manifest.ParseAt(at, time.Local)
	if err != nil {
		return usageError{fmt.Errorf("--at: %w", err)}
	}
	st, err := c.open(ctx)
	if err != nil {
		return err
	}
	m, err := restore.Choose(ctx, st, c.session, t, latest)
	if err != nil {
		return fmt.Errorf("restore session %s at %s: %w", c.session, at, err)
	}
	fmt.Fprintf(stdout, "save %s taken %s (%s local), reason %s, %d nodes, %s\n",
		m.ID, m.Time.UTC().Format(time.RFC3339Nano), m.Time.Local().Format("2006-01-02 15:04:05 MST"),
		m.Reason, m.NodeCount, humanBytes(m.BytesTotal))
	var progress restore.Progress
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar := progressbar.NewOptions64(m.BytesTotal, progressbar.OptionSetWriter(stderr),
			progressbar.OptionShowBytes(true), progressbar.OptionSetDescription("restoring"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		progress = func(done, total int64) { _ = bar.Set64(done) }
		defer bar.Finish()
	}
	if err := restore.ToDir(ctx, st, m, dataDir, force, st.String(), progress); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored into %s; start it with: pitr serve --data-dir %s --session %s\n", dataDir, dataDir, c.session)
	return nil
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
