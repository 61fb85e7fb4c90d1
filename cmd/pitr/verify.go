package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/pitr-dev/pitr/verify"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("verify", stderr)
	saveID := fs.String("save", "", "check only this save (an id as pitr saves lists it)")
	readData := fs.Bool("read-data", false, "download every chunk, check its hash, and decode every save")
	subset := fs.String("read-data-subset", "", "download and check N% of the distinct data chunks, chosen at random (e.g. 10%)")
	quiet := fs.Bool("quiet", false, "show no progress")
	seedFlag := fs.String("seed", "", "seed of the --read-data-subset choice, to repeat one (default: from the clock, printed)")
	if err := parse(fs, args); err != nil {
		return err
	}
	opts := verify.Options{SaveID: *saveID, ReadData: *readData}
	switch {
	case *subset != "" && *readData:
		return usageError{errors.New("verify: --read-data and --read-data-subset exclude each other")}
	case *subset != "":
		p, err := parsePercent(*subset)
		if err != nil {
			return usageError{fmt.Errorf("--read-data-subset: %w", err)}
		}
		opts.SubsetPercent = p
		opts.Seed = wall.Now().UnixNano()
		if *seedFlag != "" {
			if opts.Seed, err = strconv.ParseInt(*seedFlag, 10, 64); err != nil {
				return usageError{fmt.Errorf("--seed %q: want an integer", *seedFlag)}
			}
		}
	case *seedFlag != "":
		return usageError{errors.New("verify: --seed only applies with --read-data-subset")}
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	var finish func()
	opts.Progress, finish = newProgress(stderr, "checking chunks", "chunks", *quiet)
	rep, err := verify.Run(ctx, st, c.session, opts)
	finish()
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, oneLine(p.String()))
	}
	printVerify(stdout, &rep, opts, *subset != "")
	if !rep.OK() {
		bad := map[string]bool{}
		for _, p := range rep.Problems {
			bad[p.SaveID] = true
		}
		return fmt.Errorf("verify: %s in %d of %s of session %s", plural(len(rep.Problems), "problem"), len(bad), plural(rep.Saves, "save"), c.session)
	}
	return nil
}

func printVerify(w io.Writer, rep *verify.Report, opts verify.Options, subset bool) {
	meta := plural(rep.TreeNodes, "tree node")
	if rep.ListChunks > 0 {
		meta += ", " + plural(rep.ListChunks, "list chunk")
	}
	fmt.Fprintf(w, "session %s: %s, %s (%s, read and hash-checked; %s)\n", rep.Session, plural(rep.Saves, "save"),
		plural(rep.Chunks, "chunk"), meta, plural(rep.DataChunks, "data chunk"))
	switch {
	case opts.ReadData:
		fmt.Fprintf(w, "read %s (%s in %s) and checked their hashes; decoded %d of %s\n",
			plural(rep.Read, "data chunk"), humanBytes(rep.BytesRead), plural(rep.Downloads, "download"), rep.Decoded, plural(rep.Saves, "save"))
	case subset:
		fmt.Fprintf(w, "read %d of %d data chunks (%s%%, %s) and checked their hashes; checked that the others exist (repeat this choice with --seed %d)\n",
			rep.Read, rep.DataChunks, strconv.FormatFloat(opts.SubsetPercent, 'f', -1, 64), humanBytes(rep.BytesRead), rep.Seed)
	default:
		fmt.Fprintf(w, "checked that every data chunk exists (--read-data also reads them)\n")
	}
	if rep.OK() {
		fmt.Fprintln(w, "no problems found")
	} else {
		fmt.Fprintf(w, "%s found\n", plural(len(rep.Problems), "problem"))
	}
}

// parsePercent parses "N%" or "N" with N in 0..100.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fmt.Errorf("%q: want a percentage from 0%% to 100%%, like 10%%", s)
	}
	return p, nil
}
