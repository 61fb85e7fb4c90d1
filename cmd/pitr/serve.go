package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pitr-dev/pitr/backoff"
	"github.com/pitr-dev/pitr/catalog"
	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/journal"
	"github.com/pitr-dev/pitr/lifecycle"
	"github.com/pitr-dev/pitr/notify"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/retention"
	"github.com/pitr-dev/pitr/server"
	"github.com/pitr-dev/pitr/store"
	"github.com/pitr-dev/pitr/store/storeurl"
)

type serveOptions struct {
	*common
	listen         string
	dataDir        string
	saveInterval   time.Duration
	serverPassword string
	adminPassword  string
	maxNodeBytes   int64
	maxInflight    int64
	bodyTimeout    time.Duration
	headerTimeout  time.Duration
	noRestore      bool
	logFormat      string
	logLevel       string
	shutdownWait   time.Duration
	takeover       bool
	forceLocal     bool
	adopt          bool
	skipCorrupt    bool
	journalFsync   bool
	notify         notifyOptions
	keep           retention.Policy
	pruneEvery     time.Duration
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	tuneGC()
	fs, c := newFlags("serve", stderr)
	o := &serveOptions{common: c}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:5555", "address the HTTP API listens on")
	fs.StringVar(&o.dataDir, "data-dir", "pitr-data/session", "local copy of the session")
	fs.DurationVar(&o.saveInterval, "save-interval", 30*time.Second, "save at most this long after a change")
	fs.StringVar(&o.serverPassword, "server-password", "", "password for user operations (empty: open); env SERVER_PASSWORD too")
	fs.StringVar(&o.adminPassword, "admin-password", "", "password for admin operations; env ADMIN_PASSWORD too")
	fs.Int64Var(&o.maxNodeBytes, "max-node-bytes", 64<<20, "largest node data accepted, in bytes")
	fs.Int64Var(&o.maxInflight, "max-inflight-bytes", 0, "request bodies received at once, in bytes; more get 503 with Retry-After (0: 2 × the largest PUT body)")
	fs.DurationVar(&o.bodyTimeout, "body-read-timeout", server.DefaultBodyReadTimeout, "end a request whose body sends nothing for this long (408)")
	fs.DurationVar(&o.headerTimeout, "read-header-timeout", 10*time.Second, "end a connection that takes longer than this to send a request's headers")
	fs.BoolVar(&o.noRestore, "no-restore", false, "with an empty data dir, start an empty session instead of restoring the newest save")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownWait, "shutdown-timeout", time.Minute, "how long the final save on SIGTERM/SIGINT may take")
	fs.BoolVar(&o.takeover, "takeover", false, "take the session's writer claim at once from the server holding it (that server's next save fails: it is fenced)")
	fs.BoolVar(&o.forceLocal, "force-local", false, "save a data dir that diverged from the store (edits made on an older save) as the newest state, over newer saves, instead of setting it aside")
	o.notify.addFlags(fs)
	fs.BoolVar(&o.journalFsync, "journal-fsync", true, "fsync the journal before acknowledging an edit; false only to measure its cost (a crash may then lose acknowledged edits)")
	fs.BoolVar(&o.skipCorrupt, "skip-corrupt", false, "when the store's newest save is damaged, serve the newest intact committed save (with a warning) instead of failing")
	fs.BoolVar(&o.adopt, "adopt", false, "take over a data dir that came from another store or session (migration): its state is saved into this one")
	o.keep = retention.Default()
	retention.AddFlags(fs, &o.keep)
	fs.DurationVar(&o.pruneEvery, "prune-interval", 10*time.Minute, "apply the --keep-* retention policy after a save at most this often (0: never prune)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.saveInterval <= 0 {
		return usageError{errors.New("--save-interval must be positive")}
	}
	if o.maxNodeBytes <= 0 {
		return usageError{errors.New("--max-node-bytes must be positive")}
	}
	if o.bodyTimeout == 0 || o.headerTimeout == 0 {
		return usageError{errors.New("--body-read-timeout and --read-header-timeout must be positive")}
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return usageError{err}
	}
	if err := o.validate(); err != nil {
		return err
	}
	storeID, err := storeurl.Identity(o.store)
	if err != nil {
		return usageError{fmt.Errorf("--store: %w", err)}
	}
	unlock, err := datadir.Lock(o.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// Before the store is touched or the claim taken: a data dir that
	// cannot be served here fails now.
	local, err := lifecycle.Preload(lifecycle.Options{DataDir: o.dataDir, StoreID: storeID, Session: o.session, Adopt: o.adopt, Logger: log})
	if err != nil {
		return err
	}
	st, err := lifecycle.OpenStore(ctx, backoff.Policy{}, log, o.retryableOpen, o.open)
	if err != nil {
		return err
	}
	return serve(ctx, o, st, local, log)
}

// openJournal opens the data dir's journal after the last change its graph
// holds (start-up folded any older journal into it) and makes every edit of
// the session go through it: acknowledged means on local disk.
func openJournal(dataDir string, start *lifecycle.State, opts journal.Options) (*journal.Journal, error) {
	meta, _, err := datadir.LoadMeta(dataDir)
	if err != nil {
		return nil, err
	}
	jr, err := journal.Open(dataDir, meta.JournalLSN+1, opts)
	if err != nil {
		return nil, err
	}
	start.Session.SetJournal(jr, meta.JournalLSN)
	return jr, nil
}

// ensureAdminPassword generates an admin password into the data dir when
// none is configured, or reuses the one generated before; it returns the
// file's path ("" when the password was configured).
func (o *serveOptions) ensureAdminPassword() (string, error) {
	if o.adminPassword != "" {
		return "", nil
	}
	pw, _, err := datadir.AdminPassword(o.dataDir)
	if err != nil {
		return "", fmt.Errorf("no admin password configured (--admin-password, ADMIN_PASSWORD) and none could be generated: %w", err)
	}
	o.adminPassword = pw
	return filepath.Join(o.dataDir, datadir.AdminPasswordFile), nil
}

// retryableOpen says whether opening the store is worth retrying after err:
// a local directory that cannot be opened will not open later.
func (o *serveOptions) retryableOpen(err error) bool {
	loc, perr := storeurl.Parse(o.store)
	return perr == nil && loc.Scheme != storeurl.File && !errors.Is(err, storeurl.ErrBadURL)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func serve(ctx context.Context, o *serveOptions, st store.Store, local *datadir.Local, log *slog.Logger) error {
	host, _ := os.Hostname()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var saverRef atomic.Pointer[replicate.Saver] // set once the saver exists
	nt, err := o.notify.newNotifier(o.session, host, reg, log)
	if err != nil {
		return err
	}
	wc, err := acquireClaim(ctx, o, st, host, fencedHook(&saverRef, nt), log)
	if err != nil {
		return err
	}
	defer releaseClaim(context.WithoutCancel(ctx), wc, log)
	start, err := lifecycle.Start(ctx, lifecycle.Options{
		Store: st, StoreID: st.String(), Session: o.session, DataDir: o.dataDir,
		NoRestore: o.noRestore, ForceLocal: o.forceLocal, Adopt: o.adopt, SkipCorrupt: o.skipCorrupt, Local: local, Logger: log,
	})
	if err != nil {
		return err
	}
	if start.Newest != nil {
		limitMemory(start.Newest.BytesTotal, 1.5)
	}
	adminFile, err := o.ensureAdminPassword()
	if err != nil {
		return err
	}
	jr, err := openJournal(o.dataDir, start, journal.Options{NoSync: !o.journalFsync})
	if err != nil {
		return err
	}
	defer jr.Close()
	pruner := newPruner(o, st, log)
	saver := replicate.New(start.Session, replicate.Config{
		Store: st, Session: o.session, DataDir: o.dataDir, Interval: o.saveInterval,
		Host: host, StoreURL: st.String(), Logger: log, Metrics: replicate.NewMetrics(reg),
		Fence: wc.Fence, Pin: wc.Pin, Commit: wc.Commit, OnSaved: pruner.saved, OnPlan: func(n int64) { limitMemory(n, 1.5) }, Journal: jr, OnResult: saveResultHook(nt),
	})
	start.Prime(saver)
	saverRef.Store(saver)
	if err := wc.Fenced(); err != nil {
		saver.MarkFenced(err)
	}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	saverDone := make(chan struct{})
	go func() { defer close(saverDone); saver.Run(runCtx) }()
	prunerDone := make(chan struct{})
	go func() { defer close(prunerDone); pruner.run(runCtx, saver) }()
	go runNotifier(runCtx, nt, o.notify.rpoAlert, saver)
	commitStart(ctx, start, saver, log)

	api := server.New(start.Session, saver, server.Config{
		SessionName: o.session, ServerPassword: o.serverPassword, AdminPassword: o.adminPassword,
		AdminPasswordFile: adminFile,
		MaxInflightBytes:  o.maxInflight, BodyReadTimeout: o.bodyTimeout,
		MaxNodeBytes: o.maxNodeBytes, Logger: log,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		History: catalog.History{Store: st, Session: o.session},
	})
	hs, serveErr, err := listen(o, api, start, st, adminFile, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("stopping: final save")
	case err := <-serveErr:
		log.Error("http server stopped", slog.String("error", err.Error()))
	}
	shutdownHTTP(o, api, hs, log)
	cancelRun()
	<-saverDone
	<-prunerDone
	saveCtx, cancelSave := context.WithTimeout(context.Background(), o.shutdownWait)
	defer cancelSave()
	if _, err := saver.Save(saveCtx, "shutdown"); err != nil {
		return fmt.Errorf("final save failed (the local copy in %s is current): %w", o.dataDir, err)
	}
	log.Info("stopped")
	return nil
}

// fencedHook is what the claim calls when another server takes the session
// over: the saver stops for good, and the notifier tells operators.
func fencedHook(saverRef *atomic.Pointer[replicate.Saver], nt *notify.Notifier) func(error) {
	return func(err error) {
		if sv := saverRef.Load(); sv != nil {
			sv.MarkFenced(err)
		}
		if nt != nil {
			nt.SaveResult(err, true)
		}
	}
}

// commitStart acts on how start-up left the session: a rollback is
// committed at once, local changes are saved soon.
func commitStart(ctx context.Context, start *lifecycle.State, saver *replicate.Saver, log *slog.Logger) {
	if reason := start.CommitReason(); reason != "" {
		saver.ForceNext()
		if _, err := saver.Save(ctx, reason); err != nil {
			log.Warn("could not commit the restored state yet; retrying", slog.String("error", err.Error()))
		}
	} else if start.Dirty {
		saver.Request("local_changes")
	}
}

// listen opens the HTTP listener and serves api on it; the channel gets
// the server's error if it stops by itself.
func listen(o *serveOptions, api *server.Server, start *lifecycle.State, st store.Store, adminFile string, log *slog.Logger) (*http.Server, <-chan error, error) {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	hs := &http.Server{Handler: api, ReadHeaderTimeout: o.headerTimeout, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("serving", slog.String("listen", ln.Addr().String()), slog.String("store", st.String()),
		slog.String("data_dir", o.dataDir), slog.String("state", string(start.Session.State())),
		slog.Int("nodes", start.Session.NodeCount()))
	if adminFile != "" {
		log.Info("no admin password configured: using the one generated in "+adminFile+" (set --admin-password or ADMIN_PASSWORD to choose one)",
			slog.String("admin_password_file", adminFile),
			slog.String("try", fmt.Sprintf(`curl -s -X POST -H "Authorization: Bearer $(cat %s)" http://%s/v1/session/init`, adminFile, ln.Addr())))
	}
	return hs, serveErr, nil
}

// shutdownHTTP ends the event streams and stops the HTTP server, waiting
// at most --shutdown-timeout for requests in flight.
func shutdownHTTP(o *serveOptions, api *server.Server, hs *http.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownWait)
	defer cancel()
	api.Close() // ends event streams so Shutdown does not wait on them
	if err := hs.Shutdown(ctx); err != nil {
		log.Warn("http shutdown", slog.String("error", err.Error()))
	}
}

// acquireClaim takes the session's writer claim before anything is loaded
// or served: at once when it is free or released, or with --takeover;
// after waiting for it to lapse when its holder stopped renewing. A live
// holder makes serve fail, naming its host.
func acquireClaim(ctx context.Context, o *serveOptions, st store.Store, host string, onFenced func(error), log *slog.Logger) (*claim.Claim, error) {
	wc, err := claim.Acquire(ctx, st, o.session, claim.Options{Takeover: o.takeover, Host: host, Logger: log, OnFenced: onFenced})
	switch {
	case errors.Is(err, claim.ErrHeld):
		return nil, fmt.Errorf("%w; stop that server first, or start this one with --takeover", err)
	case errors.Is(err, claim.ErrUnreadable):
		return nil, fmt.Errorf("%w; --takeover replaces it", err)
	}
	if err != nil {
		return nil, fmt.Errorf("session %s in %s: %w", o.session, st, err)
	}
	attrs := []any{slog.String("session", o.session), slog.Uint64("generation", wc.Generation()), slog.String("how", wc.How())}
	if prev, ok := wc.Previous(); ok {
		attrs = append(attrs, slog.String("previous_host", prev.Host), slog.Int("previous_pid", prev.PID))
	}
	if wc.Waited() > 0 {
		attrs = append(attrs, slog.Duration("waited", wc.Waited().Round(time.Millisecond)))
	}
	msg := "writer claim held"
	switch wc.How() {
	case claim.HowTakeover, claim.HowReplaced:
		msg = "writer claim taken over (--takeover): the previous holder can no longer save"
	case claim.HowLapsed:
		msg = "writer claim taken over after it lapsed: its holder had stopped renewing it"
	}
	log.Info(msg, attrs...)
	return wc, nil
}

// releaseClaim releases the writer claim when serve ends, so that the next
// server takes it at once. A fenced claim is not released: it is no longer
// ours.
func releaseClaim(ctx context.Context, wc *claim.Claim, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch err := wc.Release(ctx); {
	case err == nil:
		log.Info("writer claim released", slog.Uint64("generation", wc.Generation()))
	case errors.Is(err, replicate.ErrFenced):
	default:
		log.Warn("could not release the writer claim; it lapses by itself within its TTL", slog.String("error", err.Error()))
	}
}
