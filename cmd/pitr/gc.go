package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/gc"
	"github.com/pitr-dev/pitr/gcsafety"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
)

func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("gc", stderr)
	graceFlag := fs.Duration("grace", gcsafety.DefaultGrace.Duration(),
		"delete only unreferenced chunks older than this; shorter than the default is safe only while no server saves to the store")
	dryRun := fs.Bool("dry-run", false, "report what would be deleted, delete nothing")
	noServer := fs.Bool("i-know-no-server-is-saving", false, "allow a --grace shorter than the default while a server holds a session's writer claim")
	maxUnused := percentFlag{v: gc.DefaultMaxUnused}
	fs.Var(&maxUnused, "max-unused", "repack an old save's pack once more than this share of it is dead or copied into the newest saves' packs (100% never repacks)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pitr gc [flags]\n\nDeletes the chunks no save of any session in the store references (--session is not used).")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	grace := gcsafety.Grace(*graceFlag)
	if err := grace.Check(); err != nil {
		return usageError{fmt.Errorf("--grace: %w", err)}
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	if grace.ShorterThanSavers() && !*dryRun {
		if err := refuseShortGrace(ctx, st, grace, *noServer, stderr); err != nil {
			return err
		}
	}
	rep, err := gc.Run(ctx, st, gc.Options{Grace: grace, DryRun: *dryRun, MaxUnused: maxUnused.v})
	if rep.Scanned > 0 || err == nil {
		printGC(stdout, rep, grace)
	}
	if rep.Missing > 0 {
		fmt.Fprintf(stderr, "pitr gc: warning: %s that saves reference missing from the store; run pitr verify on each session\n", plural(rep.Missing, "chunk"))
	}
	return err
}

// refuseShortGrace refuses a grace shorter than the one servers assume
// (gcsafety.Grace.ShorterThanSavers) while any session's writer claim is
// live: a save in flight relies on chunks a shorter grace may delete (see
// package gc). --i-know-no-server-is-saving overrides it, with a warning.
func refuseShortGrace(ctx context.Context, st store.Store, grace gcsafety.Grace, force bool, stderr io.Writer) error {
	if force {
		fmt.Fprintf(stderr, "pitr gc: warning: --grace %s is shorter than the %s servers assume; a save in flight may lose chunks (--i-know-no-server-is-saving)\n", grace, gcsafety.DefaultGrace)
		return nil
	}
	sessions, err := catalog.Sessions(ctx, st)
	if err != nil {
		return fmt.Errorf("gc: list sessions to check for live servers: %w", err)
	}
	clk := clock.Real()
	for _, name := range sessions {
		rec, err := claim.Live(ctx, st, name, clk.Now())
		if err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		if rec != nil {
			return usageError{fmt.Errorf("--grace %s is shorter than the %s a saving server relies on, and %s is saving session %s now (claim renewed %s): a save in flight could lose chunks; stop it, or use --i-know-no-server-is-saving",
				grace, gcsafety.DefaultGrace, rec.Holder, name, manifest.FormatTime(rec.RenewedAt))}
		}
	}
	fmt.Fprintf(stderr, "pitr gc: warning: --grace %s is shorter than the %s servers assume; no server holds a writer claim now, but one that starts during this gc may lose chunks\n",
		grace, gcsafety.DefaultGrace)
	return nil
}

func printGC(w io.Writer, rep gc.Report, grace gcsafety.Grace) {
	refs := plural(rep.Referenced, "chunk") // format 1 saves: chunk objects
	switch {
	case rep.ReferencedPacks > 0 && rep.Referenced > 0:
		refs = plural(rep.ReferencedPacks, "pack") + " and " + plural(rep.Referenced, "chunk object") + " of format 1 saves"
	case rep.ReferencedPacks > 0:
		refs = plural(rep.ReferencedPacks, "pack")
	}
	fmt.Fprintf(w, "%s in %s reference %s\n", plural(rep.Saves, "save"), plural(rep.Sessions, "session"), refs)
	fmt.Fprintf(w, "%s in the store (%s)\n", plural(rep.Scanned, "chunk"), humanBytes(rep.ScannedBytes))
	if rep.DryRun {
		fmt.Fprintf(w, "would delete %s older than %s, would free %s (dry run: nothing deleted)\n",
			plural(rep.Deleted, "unreferenced chunk"), grace, humanBytes(rep.BytesFreed))
	} else {
		fmt.Fprintf(w, "deleted %s older than %s, freed %s\n", plural(rep.Deleted, "unreferenced chunk"), grace, humanBytes(rep.BytesFreed))
	}
	if rep.KeptYoung > 0 {
		fmt.Fprintf(w, "kept %s not older than %s (saves in flight may use them)\n", plural(rep.KeptYoung, "unreferenced chunk"), grace)
	}
	if rep.Repacked > 0 {
		verb := "repacked"
		if rep.DryRun {
			verb = "would repack"
		}
		fmt.Fprintf(w, "%s %s of older saves (%s), copying %s they alone held into %s; their chunks are found through forward records\n",
			verb, plural(rep.Repacked, "pack"), humanBytes(rep.RepackFreed), humanBytes(rep.RepackCopied), plural(rep.RepackPacks, "new pack"))
	}
	if rep.RepackSkipped != "" {
		fmt.Fprintf(w, "did not repack: %s\n", rep.RepackSkipped)
	}
	if rep.Bundled > 0 {
		fmt.Fprintf(w, "bundled %s for readers of older saves\n", plural(rep.Bundled, "forward record"))
	}
	if rep.BundleSkipped != "" {
		fmt.Fprintf(w, "did not bundle the forward records: %s\n", rep.BundleSkipped)
	}
	if rep.Ignored > 0 {
		fmt.Fprintf(w, "left alone %s under chunks/ that are not chunks\n", plural(rep.Ignored, "object"))
	}
}

// percentFlag is a share given as a percentage, "20%" or "20".
type percentFlag struct{ v float64 }

func (p *percentFlag) String() string { return strconv.FormatFloat(p.v*100, 'f', -1, 64) + "%" }

func (p *percentFlag) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || f <= 0 || f > 100 {
		return fmt.Errorf("want a percentage above 0 and at most 100, like 20%%")
	}
	p.v = f / 100
	return nil
}

// plural is "1 chunk", "2 chunks".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
