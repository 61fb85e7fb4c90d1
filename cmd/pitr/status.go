package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/datadir"
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
	fmt.Fprintf(stdout, "unsaved:    %s\n", (time.Duration(in.UnsavedSeconds * float64(time.Second))).Round(time.Second))
	fmt.Fprintf(stdout, "fenced:     %v\n", in.Fenced)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runSave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("save", stderr)
	serverURL := fs.String("server", "http://127.0.0.1:5555", "URL of the running pitr serve")
	password := fs.String("password", "", "the admin password (default: ADMIN_PASSWORD, else the one generated in --data-dir)")
	dataDir := fs.String("data-dir", "pitr-data/session", "data dir of the server, for its generated admin password")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	pw, err := adminPasswordFor(*password, *dataDir)
	if err != nil {
		return err
	}
	cl, err := client.New(*serverURL, client.Options{Password: pw})
	if err != nil {
		return usageError{fmt.Errorf("--server: %w", err)}
	}
	r, err := cl.Save(ctx)
	if err != nil {
		return fmt.Errorf("save on %s: %w", *serverURL, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	switch {
	case r.Unchanged && r.ID == "":
		fmt.Fprintln(stdout, "nothing to save: the session is new and empty")
		return nil
	case r.Unchanged:
		fmt.Fprintf(stdout, "nothing changed since save %s (%s)\n", r.ID, manifest.FormatTime(r.Time))
		return nil
	}
	fmt.Fprintf(stdout, "save %s at %s: %s, %s uploaded in %s (%d ms)\n", r.ID, manifest.FormatTime(r.Time),
		plural(r.NodeCount, "node"), humanBytes(r.BytesUploaded), plural(r.ChunksUploaded, "chunk"), r.DurationMS)
	return nil
}

// adminPasswordFor is the password given, else ADMIN_PASSWORD, else the one
// serve generated in dataDir ("" when there is none).
func adminPasswordFor(given, dataDir string) (string, error) {
	if given != "" {
		return given, nil
	}
	if pw := os.Getenv("ADMIN_PASSWORD"); pw != "" {
		return pw, nil
	}
	return datadir.ReadAdminPassword(dataDir)
}
