package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/manifest"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("status", stderr)
	serverURL := fs.String("server", "http://127.0.0.1:5555", "URL of the running pitr serve")
	password := fs.String("password", "", "bearer password, when the server has a server password")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := client.New(*serverURL, client.Options{Password: *password})
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	in, err := cl.Session(ctx)
	if err != nil {
		return fmt.Errorf("status of %s: %w", *serverURL, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	fmt.Fprintf(stdout, "session:    %s (%s, %s)\n", in.Session, in.State, plural(in.NodeCount, "node"))
	fmt.Fprintf(stdout, "users:      %s\n", orDash(strings.Join(in.Users, ", ")))
	last := "-"
	if in.LastSave != nil {
		last = fmt.Sprintf("%s at %s (%s)", in.LastSave.ID, manifest.FormatTime(in.LastSave.Time), in.LastSave.Reason)
	}
	fmt.Fprintf(stdout, "last save:  %s\n", last)
	lastErr := "-"
	if in.LastError != nil {
		lastErr = *in.LastError
	}
	fmt.Fprintf(stdout, "last error: %s\n", lastErr)
	saving := "-"
	if in.SavingSince != nil {
		saving = "since " + manifest.FormatTime(*in.SavingSince)
	}
	fmt.Fprintf(stdout, "saving:     %s\n", saving)
	fmt.Fprintf(stdout, "fenced:     %v\n", in.Fenced)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
