package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
)

func runSaves(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("saves", stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	ms, err := catalog.List(ctx, st, c.session)
	if err != nil {
		return fmt.Errorf("list saves of session %s: %w", c.session, err)
	}
	out := make([]replicate.SaveSummary, len(ms))
	for i, m := range ms {
		out[i] = replicate.Summarize(m)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME (UTC)\tREASON\tINITIALIZED\tNODES\tTOTAL\tUPLOADED")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%d\t%s\t%s\n", s.ID, manifest.FormatTime(s.Time),
			s.Reason, s.Initialized, s.NodeCount, humanBytes(s.BytesTotal), humanBytes(s.BytesUploaded))
	}
	return tw.Flush()
}

func runSessions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("sessions", stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	names, err := catalog.Sessions(ctx, st)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	type row struct {
		Session string                 `json:"session"`
		Newest  *replicate.SaveSummary `json:"newest_save"`
	}
	rows := make([]row, 0, len(names))
	for _, n := range names {
		r := row{Session: n}
		if m, err := catalog.Newest(ctx, st, n); err == nil {
			s := replicate.Summarize(m)
			r.Newest = &s
		} else if !isNoSaves(err) {
			return fmt.Errorf("newest save of session %s: %w", n, err)
		}
		rows = append(rows, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tNEWEST SAVE\tTIME (UTC)\tREASON\tNODES")
	for _, r := range rows {
		if r.Newest == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\n", r.Session)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Session, r.Newest.ID, manifest.FormatTime(r.Newest.Time), r.Newest.Reason, r.Newest.NodeCount)
	}
	return tw.Flush()
}

func isNoSaves(err error) bool { return errors.Is(err, manifest.ErrNoSaves) }
