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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pitr-dev/pitr/claim"
	"github.com/pitr-dev/pitr/datadir"
	"github.com/pitr-dev/pitr/manifest"
	"github.com/pitr-dev/pitr/replicate"
	"github.com/pitr-dev/pitr/restore"
	"github.com/pitr-dev/pitr/retention"
	"github.com/pitr-dev/pitr/server"
	"github.com/pitr-dev/pitr/session"
	"github.com/pitr-dev/pitr/store"
)

type serveOptions struct {
	*common
	listen         string
	dataDir        string
	saveInterval   time.Duration
	serverPassword string
	adminPassword  string
	maxNodeBytes   int64
	noRestore      bool
	logFormat      string
	logLevel       string
	shutdownWait   time.Duration
	takeover       bool
	keep           retention.Policy
	pruneEvery     time.Duration
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, c := newFlags("serve", stderr)
	o := &serveOptions{common: c}
	fs.StringVar(&o.listen, "listen", "127.0.0.1:5555", "address the HTTP API listens on")
	fs.StringVar(&o.dataDir, "data-dir", "pitr-data/session", "local copy of the session")
	fs.DurationVar(&o.saveInterval, "save-interval", 30*time.Second, "save at most this long after a change")
	fs.StringVar(&o.serverPassword, "server-password", "", "password for user operations (empty: open); env SERVER_PASSWORD too")
	fs.StringVar(&o.adminPassword, "admin-password", "", "password for admin operations; env ADMIN_PASSWORD too")
	fs.Int64Var(&o.maxNodeBytes, "max-node-bytes", 64<<20, "largest node data accepted, in bytes")
	fs.BoolVar(&o.noRestore, "no-restore", false, "with an empty data dir, start an empty session instead of restoring the newest save")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.shutdownWait, "shutdown-timeout", time.Minute, "how long the final save on SIGTERM/SIGINT may take")
	fs.BoolVar(&o.takeover, "takeover", false, "take the session's writer claim at once from the server holding it (that server's next save fails: it is fenced)")
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
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return usageError{err}
	}
	st, err := o.open(ctx)
	if err != nil {
		return err
	}
	return serve(ctx, o, st, log)
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

func serve(ctx context.Context, o *serveOptions, st store.Store, log *slog.Logger) error {
	host, _ := os.Hostname()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var saverRef atomic.Pointer[replicate.Saver] // set once the saver exists
	onFenced := func(err error) {
		if sv := saverRef.Load(); sv != nil {
			sv.MarkFenced(err)
		}
	}
	wc, err := acquireClaim(ctx, o, st, host, onFenced, log)
	if err != nil {
		return err
	}
	defer releaseClaim(context.WithoutCancel(ctx), wc, log)
	start, err := loadSession(ctx, o, st, log)
	if err != nil {
		return err
	}
	pruner := newPruner(o, st, log)
	saver := replicate.New(start.sess, replicate.Config{
		Store: st, Session: o.session, DataDir: o.dataDir, Interval: o.saveInterval,
		Host: host, StoreURL: st.String(), Logger: log, Metrics: replicate.NewMetrics(reg),
		Fence: wc.Fence, Commit: wc.Commit, OnSaved: pruner.saved,
	})
	start.prime(saver)
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
	if start.commitReason != "" {
		saver.ForceNext()
		if _, err := saver.Save(ctx, start.commitReason); err != nil {
			log.Warn("could not commit the restored state yet; retrying", slog.String("error", err.Error()))
		}
	} else if start.dirty {
		saver.Request("local_changes")
	}

	api := server.New(start.sess, saver, server.Config{
		SessionName: o.session, ServerPassword: o.serverPassword, AdminPassword: o.adminPassword,
		MaxNodeBytes: o.maxNodeBytes, Logger: log,
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("serving", slog.String("listen", ln.Addr().String()), slog.String("store", st.String()),
		slog.String("data_dir", o.dataDir), slog.String("state", string(start.sess.State())),
		slog.Int("nodes", start.sess.NodeCount()))

	select {
	case <-ctx.Done():
		log.Info("stopping: final save")
	case err := <-serveErr:
		log.Error("http server stopped", slog.String("error", err.Error()))
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), o.shutdownWait)
	defer cancel()
	api.Close() // ends event streams so Shutdown does not wait on them
	if err := hs.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", slog.String("error", err.Error()))
	}
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

// startState is the session a server starts with and what the saver must
// know of it.
type startState struct {
	sess         *session.Session
	from         *manifest.Manifest // the save the session's content came from, if known
	newest       *manifest.Manifest // the store's newest save, if known
	dirty        bool               // the local copy holds changes the store lacks
	commitReason string             // commit at once with this reason (a rollback)
}

func (s *startState) prime(saver *replicate.Saver) {
	if s.from != nil {
		saver.Prime(s.from)
	}
	if s.newest != nil {
		saver.SetLast(s.newest)
	}
	if s.dirty {
		saver.MarkDirty()
	}
}

// loadSession loads the data dir, or restores the newest save into it.
func loadSession(ctx context.Context, o *serveOptions, st store.Store, log *slog.Logger) (*startState, error) {
	has, err := datadir.HasSession(o.dataDir)
	if err != nil {
		return nil, err
	}
	if has {
		return loadLocal(ctx, o, st, log)
	}
	if o.noRestore {
		log.Info("data dir empty: starting an empty session (--no-restore)")
		return &startState{sess: session.New()}, nil
	}
	newest, err := newestSave(ctx, st, o.session, log)
	if errors.Is(err, manifest.ErrNoSaves) {
		log.Info("no saves of this session in the store: starting an empty session")
		return &startState{sess: session.New()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s is empty and the store cannot be read, so the session cannot be restored (use --no-restore to start empty): %w", o.dataDir, err)
	}
	log.Info("data dir empty: restoring the newest save", slog.String("save_id", newest.ID), slog.Time("save_time", newest.Time))
	return restoreNewest(ctx, o, st, newest, log)
}

// newestSave reads the session's newest save, waiting for the store with
// backoff while it fails with an error worth retrying (down, throttling):
// deciding what to serve on a guess could bury newer saves.
func newestSave(ctx context.Context, st store.Store, sessionName string, log *slog.Logger) (*manifest.Manifest, error) {
	wait := time.Second
	for {
		m, err := manifest.Newest(ctx, st, sessionName)
		if err == nil || errors.Is(err, manifest.ErrNoSaves) || store.IsPermanent(err) {
			return m, err
		}
		log.Warn("cannot read the newest save; retrying", slog.Duration("in", wait), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// restoreNewest fetches save newest into the data dir and starts from it.
func restoreNewest(ctx context.Context, o *serveOptions, st store.Store, newest *manifest.Manifest, log *slog.Logger) (*startState, error) {
	graph, g, _, err := restore.Fetch(ctx, st, newest, restore.DefaultParallel, nil)
	if err != nil {
		return nil, fmt.Errorf("restore newest save: %w", err)
	}
	t := newest.Time
	if err := datadir.Write(o.dataDir, graph, datadir.Meta{Session: o.session, SaveID: newest.ID, SaveTime: &t, StoreURL: st.String(),
		Initialized: g.Initialized, NodeCount: len(g.Nodes)}); err != nil {
		return nil, err
	}
	return &startState{sess: session.FromGraph(g), from: newest, newest: newest}, nil
}

func loadLocal(ctx context.Context, o *serveOptions, st store.Store, log *slog.Logger) (*startState, error) {
	local, err := datadir.Load(o.dataDir)
	if err != nil {
		return nil, err
	}
	if local.Meta.Session != "" && local.Meta.Session != o.session {
		return nil, fmt.Errorf("data dir %s holds session %q, not %q", o.dataDir, local.Meta.Session, o.session)
	}
	s := &startState{sess: session.FromGraph(local.Graph), dirty: local.Dirty}
	log.Info("loaded data dir", slog.String("data_dir", o.dataDir), slog.String("save_id", local.Meta.SaveID), slog.Bool("pending", local.Dirty))
	newest, err := newestSave(ctx, st, o.session, log)
	switch {
	case errors.Is(err, manifest.ErrNoSaves):
		s.dirty = true
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("find the newest save to compare the data dir with: %w", err)
	}
	s.newest = newest
	if local.Meta.Restored && local.Meta.SaveID == newest.ID {
		// A restore of the newest save needs no commit; forget that it was
		// restored, or a later start would take it for a rollback.
		meta := local.Meta
		meta.Restored = false
		if err := datadir.WriteMeta(o.dataDir, meta); err != nil {
			return nil, err
		}
	}
	if local.Meta.SaveID == "" {
		s.dirty = true
		return s, nil
	}
	from := newest
	if local.Meta.SaveID != newest.ID && !local.Meta.Restored && !s.dirty {
		// A copy left from an earlier run, while another server saved
		// newer states: the store is ahead, so serve its newest save.
		log.Warn("data dir holds an older save than the store's newest and no unsaved changes: loading the newest save",
			slog.String("data_dir_save", local.Meta.SaveID), slog.String("newest_save", newest.ID))
		return restoreNewest(ctx, o, st, newest, log)
	}
	if local.Meta.SaveID != newest.ID {
		if s.dirty {
			log.Warn("data dir holds unsaved changes made on an older save than the store's newest; they will be saved as the newest state",
				slog.String("data_dir_save", local.Meta.SaveID), slog.String("newest_save", newest.ID))
		}
		if from, err = manifest.Load(ctx, st, o.session, local.Meta.SaveID); err != nil {
			log.Warn("save of the local copy not found in the store; saving it anew", slog.String("save_id", local.Meta.SaveID), slog.String("error", err.Error()))
			s.dirty = true
			return s, nil
		}
		if !s.dirty {
			s.commitReason = "restored:" + local.Meta.SaveID
		}
	}
	// The chunk list of from is not read: the saver Stats the chunks of a
	// save it was primed with anyway (their age is unknown, see package gc).
	s.from = from
	return s, nil
}
