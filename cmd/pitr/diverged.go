package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

const divergedUsage = `usage: pitr diverged list|show|apply [flags] ...

  list                        the copies serve set aside in --data-dir/diverged
  show NAME [--json]          the nodes copy NAME changed relative to its base save
  apply NAME NODE...|--all --server URL [--user U] [--password PW]
                              put those nodes (or delete them) in the live session
  drop NAME                   delete copy NAME (after applying what you want of it)`

func runDiverged(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, divergedUsage)
		return usageError{errors.New("diverged: want list, show, apply or drop")}
	}
	switch args[0] {
	case "list":
		return divergedList(args[1:], stdout, stderr)
	case "show":
		return divergedShow(ctx, args[1:], stdout, stderr)
	case "apply":
		return divergedApply(ctx, args[1:], stdout, stderr)
	case "drop":
		return divergedDrop(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, divergedUsage)
	return usageError{fmt.Errorf("diverged: unknown subcommand %q (want list, show, apply or drop)", args[0])}
}

func divergedDrop(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("diverged drop", stderr)
	dataDir := fs.String("data-dir", "pitr-data/session", "data dir of the server")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{errors.New("diverged drop: want the name of one set-aside copy (see pitr diverged list)")}
	}
	if err := datadir.DropDiverged(*dataDir, rest[0]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dropped set-aside copy %s\n", rest[0])
	return nil
}

func divergedList(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("diverged list", stderr)
	dataDir := fs.String("data-dir", "pitr-data/session", "data dir of the server")
	if err := parse(fs, args); err != nil {
		return err
	}
	copies, err := datadir.ListDiverged(*dataDir)
	if err != nil {
		return err
	}
	if len(copies) == 0 {
		fmt.Fprintf(stdout, "no set-aside copies in %s\n", *dataDir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSET ASIDE\tBASE SAVE\tNEWEST SAVE THEN\tNODES")
	for _, d := range copies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.Name, d.Info.SetAsideAt.UTC().Format(time.RFC3339),
			orNone(d.Info.BaseSave), d.Info.NewestSave, d.Info.NodeCount)
	}
	return tw.Flush()
}

// divergedChanges loads set-aside copy name and the nodes it changed
// relative to its base save, read from the store.
func divergedChanges(ctx context.Context, c *common, dataDir, name string, stderr io.Writer) (*datadir.Diverged, []session.Change, error) {
	d, local, err := datadir.LoadDiverged(dataDir, name)
	if err != nil {
		return nil, nil, err
	}
	if err := sameOrigin(c, d); err != nil {
		return nil, nil, err
	}
	var base *session.Graph
	if d.Info.BaseSave != "" {
		st, err := c.openExisting(ctx)
		if err != nil {
			return nil, nil, err
		}
		base, err = loadGraph(ctx, st, c.session, d.Info.BaseSave)
		if errors.Is(err, store.ErrNotFound) {
			fmt.Fprintf(stderr, "pitr: base save %s is no longer in the store (pruned?): every node of the copy is listed as added\n", d.Info.BaseSave)
		} else if err != nil {
			return nil, nil, err
		}
	}
	return d, session.Diff(base, local.Graph), nil
}

// sameOrigin refuses to compare copy d with a store or session other than
// the one it was set aside from: its base save would not be found there,
// and every node would look added.
func sameOrigin(c *common, d *datadir.Diverged) error {
	id, err := storeurl.Identity(c.store)
	if err != nil {
		return usageError{fmt.Errorf("--store: %w", err)}
	}
	if d.Info.Session != c.session || (d.Info.Store != "" && !storeurl.SameStore(d.Info.Store, id)) {
		return fmt.Errorf("copy %s was set aside from session %q of store %s, not session %q of %s: give that --store and --session",
			d.Name, d.Info.Session, d.Info.Store, c.session, id)
	}
	return nil
}

func loadGraph(ctx context.Context, st store.Store, sessionName, id string) (*session.Graph, error) {
	m, err := catalog.Load(ctx, st, sessionName, id)
	if err != nil {
		return nil, fmt.Errorf("base save %s: %w", id, err)
	}
	_, g, _, err := restore.Fetch(ctx, st, m, restore.DefaultParallel, nil)
	if err != nil {
		return nil, fmt.Errorf("base save %s: %w", id, err)
	}
	return g, nil
}

// changeJSON is one changed node as `pitr diverged show --json` prints it.
type changeJSON struct {
	ID     string `json:"id"`
	Change string `json:"change"`
	Type   string `json:"type,omitempty"`
	Owner  string `json:"owner,omitempty"`
	Size   int    `json:"size"`
}

func describeChange(ch session.Change) changeJSON {
	out := changeJSON{ID: ch.ID, Change: string(ch.Kind)}
	n := ch.New
	if n == nil {
		n = ch.Old
	}
	out.Type, out.Owner, out.Size = n.Type, n.Owner, len(n.Data)
	if ch.Kind == session.Removed {
		out.Size = 0
	}
	return out
}

func divergedShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("diverged show", stderr)
	dataDir := fs.String("data-dir", "pitr-data/session", "data dir of the server")
	asJSON := fs.Bool("json", false, "print a JSON array")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{errors.New("diverged show: want the name of one set-aside copy (see pitr diverged list)")}
	}
	d, changes, err := divergedChanges(ctx, c, *dataDir, rest[0], stderr)
	if err != nil {
		return err
	}
	rows := make([]changeJSON, len(changes))
	for i, ch := range changes {
		rows[i] = describeChange(ch)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	fmt.Fprintf(stdout, "copy %s: %s changed relative to save %s (the store's newest was %s)\n",
		d.Name, plural(len(rows), "node"), orNone(d.Info.BaseSave), d.Info.NewestSave)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tCHANGE\tTYPE\tOWNER\tSIZE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Change, r.Type, r.Owner, humanBytes(int64(r.Size)))
	}
	return tw.Flush()
}

func divergedApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("diverged apply", stderr)
	dataDir := fs.String("data-dir", "pitr-data/session", "data dir of the server")
	serverURL := fs.String("server", "http://127.0.0.1:5555", "URL of the running pitr serve")
	user := fs.String("user", "", "act as this user (X-Pitr-User): ownership rules apply as for a PUT")
	password := fs.String("password", "", "bearer password (default: the admin password generated in --data-dir, if any)")
	all := fs.Bool("all", false, "apply every node the copy changed")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 || (len(rest) == 1) == !*all {
		return usageError{errors.New("diverged apply: want NAME then the nodes to apply, or NAME --all")}
	}
	if *password, err = adminPasswordFor(*password, *dataDir); err != nil {
		return err
	}
	cl, err := client.New(*serverURL, client.Options{Password: *password, User: *user})
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	d, changes, err := divergedChanges(ctx, c, *dataDir, rest[0], stderr)
	if err != nil {
		return err
	}
	chosen, err := chooseChanges(changes, rest[1:], *all, d.Name)
	if err != nil {
		return err
	}
	failed := 0
	for _, ch := range chosen {
		if err := applyChange(ctx, cl, ch, stdout); err != nil {
			fmt.Fprintf(stderr, "pitr: node %s: %v\n", ch.ID, err)
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("diverged apply: %d of %d nodes not applied", failed, len(chosen))
	}
	return nil
}

// chooseChanges picks the changes of the nodes ids (all with all); a node
// the copy did not change is an error.
func chooseChanges(changes []session.Change, ids []string, all bool, name string) ([]session.Change, error) {
	if all {
		return changes, nil
	}
	var out []session.Change
	for _, id := range ids {
		i := slices.IndexFunc(changes, func(ch session.Change) bool { return ch.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("node %q: copy %s did not change it (see pitr diverged show %s)", id, name, name)
		}
		out = append(out, changes[i])
	}
	return out, nil
}

func applyChange(ctx context.Context, cl *client.Client, ch session.Change, stdout io.Writer) error {
	if ch.Kind == session.Removed {
		err := cl.DeleteNode(ctx, ch.ID)
		if client.IsNotFound(err) {
			fmt.Fprintf(stdout, "%s: already absent\n", ch.ID)
			return nil
		}
		if err == nil {
			fmt.Fprintf(stdout, "%s: deleted\n", ch.ID)
		}
		return err
	}
	n := ch.New
	got, err := cl.PutNode(ctx, n.ID, client.NodeInput{Type: n.Type, Owner: n.Owner, Deps: n.Deps, Data: n.Data})
	if err == nil {
		fmt.Fprintf(stdout, "%s: put (%s), now version %d\n", n.ID, ch.Kind, got.Version)
	}
	return err
}

// parseWithArgs is parse for commands with positional arguments, which may
// come before, between or after the flags.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			rest = append(rest, args[i+1:]...)
			i = len(args)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && !hasValue && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		default:
			rest = append(rest, a)
		}
	}
	return rest, parse(fs, flags)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func orNone(id string) string {
	if id == "" {
		return "(never saved)"
	}
	return id
}
