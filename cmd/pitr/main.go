// Command pitr hosts a collaborative editing session and saves it
// continuously to object storage; see README.md and docs/api.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"serve", "run the session server and its saver", runServe},
	{"restore", "write the session as of a time into a data dir", runRestore},
	{"saves", "list the session's saves", runSaves},
	{"sessions", "list the sessions in the store", runSessions},
	{"prune", "delete saves a retention policy does not keep", runPrune},
	{"gc", "delete chunks that no save references (older than --grace)", runGC},
	{"verify", "check that every save of the session is restorable", runVerify},
	{"show", "print one node as of a time (reading only that node)", runShow},
	{"diff", "list the nodes added, removed and changed between two saves", runDiff},
	{"revert", "bring one node back as of a time into a running server, as a new edit", runRevert},
	{"version", "print pitr's version, commit and Go version", runVersion},
	{"save", "ask a running server to save now and print the save", runSave},
	{"status", "show a running server's state, last save, last error and whether it is fenced", runStatus},
	{"diverged", "list, show and apply the local copies serve set aside (list|show|apply)", runDiverged},
}

// tuneGC trades some CPU for memory in the commands that hold a whole
// graph (serve, restore): by default the Go runtime lets the heap grow to
// twice what is live before it collects; at 40 % the peak stays closer to
// the graph itself (BENCHMARKS.md, the scale section). GOGC, when set,
// wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(40)
	}
}

// limitMemory sets the Go runtime's soft memory limit to what a command
// holding a graph of graphBytes should need (factor × the graph + 96
// MiB), so that the collector runs before the heap overshoots it; a limit
// is soft (the runtime exceeds it rather than thrash). 96 MiB against 128
// lowered peak RSS by 30–40 MB at 20,000 nodes and 1 GB (pitr-bench
// --scale, same run) and did not slow saves or restores. GOMEMLIMIT, when
// set, wins.
func limitMemory(graphBytes int64, factor float64) {
	const memoryHeadroom = 96 << 20
	if os.Getenv("GOMEMLIMIT") != "" || graphBytes <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(float64(graphBytes)*factor) + memoryHeadroom)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "pitr: "+oneLine(err.Error()))
		}
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if slices.Contains(args, "--version") || slices.Contains(args, "-version") {
		fmt.Fprintln(stdout, versionInfo())
		return nil
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pitr <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pitr <command> -h' for its flags. Every flag can also be set with PITR_<FLAG> (e.g. PITR_SAVE_INTERVAL).")
}

func exitCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// common holds the flags every command takes.
type common struct {
	store          string
	session        string
	s3Endpoint     string
	write          store.WriteOptions
	forcePathStyle bool
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("pitr "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &common{}
	fs.StringVar(&c.store, "store", "file://pitr-data/store", "store URL: file://PATH, minio://HOST:PORT/BUCKET[/PREFIX][?tls=false] or s3://BUCKET[/PREFIX]")
	fs.StringVar(&c.session, "session", "default", "session name")
	fs.StringVar(&c.write.SSE, "s3-sse", "", "server-side encryption of the objects written to minio:// or s3:// stores: AES256 or aws:kms")
	fs.StringVar(&c.write.SSEKMSKeyID, "s3-sse-kms-key-id", "", "KMS key of --s3-sse aws:kms (default: the account's)")
	fs.StringVar(&c.write.StorageClass, "s3-storage-class", "", "storage class of chunk objects (manifests and claims stay STANDARD), e.g. STANDARD_IA")
	fs.BoolVar(&c.forcePathStyle, "s3-force-path-style", false, "address s3:// buckets path-style (host/bucket/key); always so with --s3-endpoint")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "endpoint URL for s3:// stores (any S3-compatible service; path-style then); env AWS_ENDPOINT_URL_S3 too")
	return fs, c
}

// envAliases are environment variables read for a flag after PITR_<FLAG>.
var envAliases = map[string]string{
	"server-password": "SERVER_PASSWORD",
	"admin-password":  "ADMIN_PASSWORD",
	"s3-endpoint":     "AWS_ENDPOINT_URL_S3",
}

// parse parses args, then fills every flag not given on the command line
// from PITR_<FLAG> (or its alias). Precedence: flag, PITR_ env, alias env,
// default.
func parse(fs *flag.FlagSet, args []string) error {
	fs.VisitAll(func(f *flag.Flag) { f.Value = withHint(f.Value) })
	fs.Usage = func() {
		// The flag package names and zero-compares the standard types only.
		fs.VisitAll(func(f *flag.Flag) {
			if h, ok := f.Value.(*hintedValue); ok {
				f.Value = h.Value
			}
		})
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "PITR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok && envAliases[f.Name] != "" {
			env = envAliases[f.Name]
			v, ok = os.LookupEnv(env)
		}
		if ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", env, v, e)}
			}
		}
	})
	if err != nil {
		return err
	}
	return checkNotNegative(fs)
}

// hintedValue is a flag value whose parse errors say what a valid value
// looks like ("parse error" alone does not).
type hintedValue struct {
	flag.Value
	hint string
}

func (h *hintedValue) String() string {
	if h == nil || h.Value == nil {
		return ""
	}
	return h.Value.String()
}

func (h *hintedValue) Set(s string) error {
	if err := h.Value.Set(s); err != nil {
		return fmt.Errorf("%w (want %s)", err, h.hint)
	}
	return nil
}

func (h *hintedValue) IsBoolFlag() bool {
	b, ok := h.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (h *hintedValue) Get() any {
	if g, ok := h.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

// withHint wraps the standard flag types with a hint for their errors.
func withHint(v flag.Value) flag.Value {
	g, ok := v.(flag.Getter)
	if !ok {
		return v
	}
	switch g.Get().(type) {
	case time.Duration:
		return &hintedValue{v, "a duration such as 30s, 5m or 1h30m"}
	case int, int64, uint, uint64:
		return &hintedValue{v, "a whole number such as 100"}
	case bool:
		return &hintedValue{v, "true or false"}
	}
	return v
}

// checkNotNegative rejects a negative duration or number in any flag: none
// of pitr's means anything below zero.
func checkNotNegative(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok || err != nil {
			return
		}
		neg := false
		switch v := g.Get().(type) {
		case time.Duration:
			neg = v < 0
		case int:
			neg = v < 0
		case int64:
			neg = v < 0
		}
		if neg {
			err = usageError{fmt.Errorf("--%s %s: must not be negative", f.Name, f.Value)}
		}
	})
	return err
}

func (c *common) validate() error {
	if err := c.write.Validate(); err != nil {
		return usageError{err}
	}
	if err := manifest.ValidSessionName(c.session); err != nil {
		return usageError{fmt.Errorf("--session: %w", err)}
	}
	return nil
}

func (c *common) open(ctx context.Context) (store.Store, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	opts := c.storeOptions()
	opts.CreateBucket = true
	st, err := storeurl.Open(ctx, c.store, opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}

// openExisting opens the store without creating anything: every command
// but serve works on a store that already exists, and a missing directory
// or bucket is an error naming it (wrapping store.ErrNoStore). Store errors
// name the store themselves.
func (c *common) openExisting(ctx context.Context) (store.Store, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return storeurl.Open(ctx, c.store, c.storeOptions())
}

// storeOptions are the store settings of the common flags.
func (c *common) storeOptions() storeurl.Options {
	return storeurl.Options{S3Endpoint: c.s3Endpoint, Write: c.write, ForcePathStyle: c.forcePathStyle}
}
