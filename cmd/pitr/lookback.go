package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

// nodeInfo is a node as show and diff print it (its data only as a size).
type nodeInfo struct {
	ID      string   `json:"id"`
	Type    string   `json:"type"`
	Owner   string   `json:"owner"`
	Deps    []string `json:"deps"`
	Version uint64   `json:"version"`
	Size    int      `json:"size"`
}

func infoOf(n *session.Node) *nodeInfo {
	if n == nil {
		return nil
	}
	return &nodeInfo{ID: n.ID, Type: n.Type, Owner: n.Owner, Deps: n.Deps, Version: n.Version, Size: len(n.Data)}
}

// saveRef is how show and diff name the save they read.
type saveRef struct {
	ID   string `json:"id"`
	Time string `json:"time"`
}

func refOf(m *manifest.Manifest) saveRef { return saveRef{ID: m.ID, Time: manifest.FormatTime(m.Time)} }

// chooseSave finds the committed save a time, 'latest' or a save id names.
func chooseSave(ctx context.Context, st store.Store, session, at string) (*manifest.Manifest, error) {
	tg, err := parseTarget(at, "")
	if err != nil {
		return nil, err
	}
	return tg.choose(ctx, st, session)
}

func runShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("show", stderr)
	at := fs.String("at", "latest", "the save to read: a time, 'latest' or a save id (as for restore)")
	dataOut := fs.String("data-out", "", "write the node's data to this file")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{errors.New("show: give one node id: pitr show --at TIME NODE_ID")}
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	m, err := chooseSave(ctx, st, c.session, *at)
	if err != nil {
		return err
	}
	n, err := catalog.Node(ctx, st, m, rest[0])
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	if *dataOut != "" {
		if err := os.WriteFile(*dataOut, n.Data, 0o644); err != nil {
			return fmt.Errorf("show: write the data of node %s: %w", n.ID, err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Save saveRef   `json:"save"`
			Node *nodeInfo `json:"node"`
		}{refOf(m), infoOf(n)})
	}
	fmt.Fprintf(stdout, "node %s in save %s (%s)\n", n.ID, m.ID, manifest.FormatTime(m.Time))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  type\t%s\n  owner\t%s\n  deps\t%s\n  version\t%d\n  size\t%s\n",
		n.Type, n.Owner, strings.Join(n.Deps, ", "), n.Version, humanBytes(int64(len(n.Data))))
	return tw.Flush()
}

// change is one line of pitr diff.
type change struct {
	Change string    `json:"change"` // added, removed, changed
	ID     string    `json:"id"`
	From   *nodeInfo `json:"from,omitempty"`
	To     *nodeInfo `json:"to,omitempty"`
}

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("diff", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usageError{errors.New("diff: give two saves (times, save ids or 'latest'): pitr diff FROM TO")}
	}
	st, err := c.openExisting(ctx)
	if err != nil {
		return err
	}
	from, err := chooseSave(ctx, st, c.session, rest[0])
	if err != nil {
		return err
	}
	to, err := chooseSave(ctx, st, c.session, rest[1])
	if err != nil {
		return err
	}
	changes, err := catalog.Diff(ctx, st, from, to)
	if err != nil {
		return err
	}
	out := make([]change, len(changes))
	for i, ch := range changes {
		kind := "changed"
		switch {
		case ch.Old == nil:
			kind = "added"
		case ch.New == nil:
			kind = "removed"
		}
		out[i] = change{Change: kind, ID: ch.ID, From: infoOf(ch.Old), To: infoOf(ch.New)}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			From    saveRef  `json:"from"`
			To      saveRef  `json:"to"`
			Changes []change `json:"changes"`
		}{refOf(from), refOf(to), out})
	}
	fmt.Fprintf(stdout, "from save %s (%s) to save %s (%s): %s\n", from.ID, manifest.FormatTime(from.Time),
		to.ID, manifest.FormatTime(to.Time), plural(len(out), "node"))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tNODE\tTYPE\tOWNER\tVERSION\tSIZE")
	for _, c := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Change, c.ID,
			pair(c.From, c.To, func(n *nodeInfo) string { return n.Type }),
			pair(c.From, c.To, func(n *nodeInfo) string { return n.Owner }),
			pair(c.From, c.To, func(n *nodeInfo) string { return fmt.Sprint(n.Version) }),
			pair(c.From, c.To, func(n *nodeInfo) string { return humanBytes(int64(n.Size)) }))
	}
	return tw.Flush()
}

// pair prints a field of a node on both sides: "a → b" when it changed.
func pair(from, to *nodeInfo, f func(*nodeInfo) string) string {
	switch {
	case from == nil:
		return f(to)
	case to == nil:
		return f(from)
	case f(from) == f(to):
		return f(from)
	}
	return f(from) + " → " + f(to)
}

func runRevert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("revert", stderr)
	serverURL := fs.String("server", "http://127.0.0.1:5555", "URL of the running pitr serve")
	password := fs.String("password", "", "bearer password, when the server has a server password")
	user := fs.String("user", "", "the user the edit is made as (ownership rules of a PUT apply)")
	at := fs.String("at", "", "the time to bring the node back from (as for restore), or 'latest'")
	saveID := fs.String("save", "", "the save to bring the node back from, by id (instead of --at)")
	dryRun := fs.Bool("dry-run", false, "only print what would change")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	rest, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 1:
		return usageError{errors.New("revert: give one node id: pitr revert --server URL NODE_ID --at TIME")}
	case (*at == "") == (*saveID == ""):
		return usageError{errors.New("revert: give one of --at TIME and --save ID")}
	}
	cl, err := client.New(*serverURL, client.Options{Password: *password, User: *user})
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	res, err := cl.RevertNode(ctx, rest[0], client.Revert{At: *at, Save: *saveID, DryRun: *dryRun})
	if err != nil {
		return fmt.Errorf("revert node %s on %s: %w", rest[0], *serverURL, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	verb := map[string]string{"put": "put back", "delete": "deleted (it did not exist then)", "none": "already as it was"}[res.Action]
	if res.DryRun && res.Action != "none" {
		verb = "would be " + verb
	}
	fmt.Fprintf(stdout, "node %s %s, as of save %s (%s)\n", res.ID, verb, res.Save.ID, manifest.FormatTime(res.Save.Time))
	if res.After != nil && !res.DryRun && res.Action == "put" {
		fmt.Fprintf(stdout, "now version %d, %s\n", res.After.Version, humanBytes(int64(res.Size)))
	}
	return nil
}
