package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/retention"
)

func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("prune", stderr)
	var p retention.Policy
	retention.AddFlags(fs, &p)
	dryRun := fs.Bool("dry-run", false, "list what would be removed and what stays, and why; delete nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return usageError{fmt.Errorf("prune: %w", err)}
	}
	if p.IsZero() {
		return usageError{fmt.Errorf("prune: %w", retention.ErrNoPolicy)}
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	res, err := retention.Prune(ctx, st, c.session, p, time.Local, *dryRun)
	if res.Decisions != nil {
		printPrune(stdout, res)
	}
	return err
}

// printPrune writes the decisions, oldest first, and the summary line.
func printPrune(w io.Writer, res retention.Result) {
	fmt.Fprintf(w, "session %s, policy %s; hours, days, weeks and months in time zone %s\n",
		res.Session, res.Policy, zoneName(time.Local))
	if len(res.Decisions) == 0 {
		fmt.Fprintln(w, "no saves")
		return
	}
	remove := "remove"
	if res.DryRun {
		remove = "would remove"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tACTION\tREASONS")
	for _, d := range res.Decisions {
		action, reasons := remove, "-"
		if d.Keep {
			action, reasons = "keep", strings.Join(d.Reasons, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.ID, manifest.FormatTime(d.Time), action, reasons)
	}
	_ = tw.Flush()
	switch {
	case res.DryRun:
		fmt.Fprintf(w, "kept %d, would remove %d (dry run: nothing deleted)\n", res.Kept, res.Removed)
	case res.Deleted < res.Removed:
		fmt.Fprintf(w, "kept %d, removed %d of %d\n", res.Kept, res.Deleted, res.Removed)
	default:
		fmt.Fprintf(w, "kept %d, removed %d\n", res.Kept, res.Removed)
	}
}

// zoneName names loc for people: TZ for the local zone when it is set,
// else the zone's current abbreviation.
func zoneName(loc *time.Location) string {
	if loc != time.Local {
		return loc.String()
	}
	if tz, ok := os.LookupEnv("TZ"); ok && tz != "" {
		return tz
	}
	name, _ := wall.Now().In(loc).Zone()
	return "local (" + name + ")"
}
