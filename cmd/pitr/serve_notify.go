package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pitr-dev/pitr/notify"
	"github.com/pitr-dev/pitr/replicate"
)

// urlList is a repeatable URL flag; PITR_NOTIFY_URL may hold several,
// separated by commas or spaces.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if err := notify.ValidURL(u); err != nil {
			return err
		}
		*l = append(*l, u)
	}
	return nil
}

// notifyOptions are serve's alerting flags.
type notifyOptions struct {
	urls      urlList
	pingURL   string
	pingEvery time.Duration
	rpoAlert  time.Duration
}

func (n *notifyOptions) addFlags(fs *flag.FlagSet) {
	fs.Var(&n.urls, "notify-url", "POST a JSON event here when saves start failing, recover, the server is fenced, or changes stay unsaved past --rpo-alert (repeatable)")
	fs.StringVar(&n.pingURL, "ping-url", "", "healthchecks-style URL called after saves (URL/fail after a failed one)")
	fs.DurationVar(&n.pingEvery, "ping-interval", time.Minute, "call --ping-url at most this often")
	fs.DurationVar(&n.rpoAlert, "rpo-alert", 5*time.Minute, "notify when a change is unsaved for longer than this (0: never)")
}

// newNotifier builds the notifier of serve's flags (nil when no URL is
// configured).
func (n *notifyOptions) newNotifier(session, host string, reg prometheus.Registerer, log *slog.Logger) (*notify.Notifier, error) {
	if len(n.urls) == 0 && n.pingURL == "" {
		return nil, nil
	}
	nt, err := notify.New(notify.Config{URLs: n.urls, PingURL: n.pingURL, PingEvery: n.pingEvery, RPOAlert: n.rpoAlert,
		Session: session, Host: host, Logger: log, Metrics: reg})
	if err != nil {
		return nil, usageError{err}
	}
	return nt, nil
}

// runNotifier delivers nt's notifications and checks the RPO until ctx
// ends.
func runNotifier(ctx context.Context, nt *notify.Notifier, every time.Duration, saver *replicate.Saver) {
	if nt == nil {
		return
	}
	t := wall.NewTicker(min(max(every/5, time.Second), 10*time.Second))
	defer t.Stop()
	nt.Run(ctx, t.Chan(), saver.UnsavedSince)
}

// saveResultHook tells nt the outcome of each save.
func saveResultHook(nt *notify.Notifier) func(error) {
	if nt == nil {
		return nil
	}
	return func(err error) { nt.SaveResult(err, errors.Is(err, replicate.ErrFenced)) }
}
