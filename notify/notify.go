// Package notify tells operators about a server's saves without ever
// slowing them: it POSTs a small JSON event to each --notify-url when saves
// start failing after having worked, when they recover, when the server is
// fenced, and when unsaved changes grow older than --rpo-alert (and again
// when they no longer are); and it calls a healthchecks-style --ping-url
// after saves (URL/fail after a failed one), at most once per
// --ping-interval. Delivery is retried with backoff by go-retryablehttp in
// the background; a full queue or a delivery that fails for good counts in
// pitr_notify_failures_total and is logged.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/pitr-dev/pitr/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Event kinds.
const (
	SaveFailed    = "save_failed"
	SaveRecovered = "save_recovered"
	Fenced        = "fenced"
	RPOExceeded   = "rpo_exceeded"
	RPORecovered  = "rpo_recovered"
)

// Event is the JSON body POSTed to every notify URL.
type Event struct {
	Event          string    `json:"event"`
	Session        string    `json:"session"`
	Host           string    `json:"host"`
	Time           time.Time `json:"time"`
	Message        string    `json:"message"`
	UnsavedSeconds float64   `json:"unsaved_seconds"`
}

// Config configures a Notifier.
type Config struct {
	URLs      []string      // --notify-url, each http(s)
	PingURL   string        // --ping-url, "" for none
	PingEvery time.Duration // --ping-interval
	RPOAlert  time.Duration // --rpo-alert; 0 turns the RPO alert off
	Session   string
	Host      string
	Logger    *slog.Logger
	Metrics   prometheus.Registerer // may be nil
	Clock     clock.Clock           // the wall clock when nil
	// HTTP is the client deliveries use (default: a 10 s timeout).
	HTTP *http.Client
}

// Notifier sends events. Its methods never block.
type Notifier struct {
	cfg      Config
	client   *retryablehttp.Client
	queue    chan request
	failures prometheus.Counter

	mu       sync.Mutex
	anySaved bool // a save ever succeeded
	failing  bool // save_failed was sent and no save succeeded since
	lastOK   bool // the last save attempt worked
	fenced   bool
	late     bool // the RPO alert is raised
	lastPing time.Time
}

type request struct {
	method, url string
	body        []byte
}

// ValidURL checks that s is an absolute http or https URL.
func ValidURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL (want e.g. https://hooks.example.com/pitr)", s)
	}
	return nil
}

// New returns a notifier; Run must run for it to deliver anything.
func New(cfg Config) (*Notifier, error) {
	for _, u := range cfg.URLs {
		if err := ValidURL(u); err != nil {
			return nil, fmt.Errorf("--notify-url: %w", err)
		}
	}
	if cfg.PingURL != "" {
		if err := ValidURL(cfg.PingURL); err != nil {
			return nil, fmt.Errorf("--ping-url: %w", err)
		}
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	c := retryablehttp.NewClient()
	c.HTTPClient, c.Logger, c.RetryMax = cfg.HTTP, nil, 4
	c.RetryWaitMin, c.RetryWaitMax = 500*time.Millisecond, 30*time.Second
	n := &Notifier{cfg: cfg, client: c, queue: make(chan request, 64),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pitr_notify_failures_total",
			Help: "Notifications and pings that could not be delivered (after retries, or dropped from a full queue).",
		})}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(n.failures)
	}
	return n, nil
}

// SaveResult is told the outcome of every save attempt (the saver's
// OnResult): it raises save_failed, save_recovered and fenced, and pings.
func (n *Notifier) SaveResult(err error, fenced bool) {
	n.mu.Lock()
	var kind, msg string
	switch {
	case fenced && !n.fenced:
		n.fenced = true
		kind, msg = Fenced, "another server took over the session; this one no longer saves: "+err.Error()
	case fenced: // reported once, by whichever saw it first
	case err != nil && !n.failing && n.anySaved:
		n.failing = true
		kind, msg = SaveFailed, err.Error()
	case err == nil && n.failing:
		n.failing = false
		kind, msg = SaveRecovered, "saves succeed again"
	}
	n.anySaved = n.anySaved || err == nil
	n.lastOK = err == nil
	n.mu.Unlock()
	if kind != "" {
		n.emit(kind, msg, 0)
	}
	n.ping(false)
}

// ping calls the ping URL (URL/fail when the last save failed) unless it
// was called within PingEvery. idle pings only when a save has worked and
// none failed since: a quiet, healthy session keeps its check green.
func (n *Notifier) ping(idle bool) {
	if n.cfg.PingURL == "" {
		return
	}
	n.mu.Lock()
	due := n.cfg.Clock.Now().Sub(n.lastPing) >= n.cfg.PingEvery && (!idle || (n.anySaved && n.lastOK && !n.fenced))
	if due {
		n.lastPing = n.cfg.Clock.Now()
	}
	ok := n.lastOK && !n.fenced
	n.mu.Unlock()
	if !due {
		return
	}
	u := n.cfg.PingURL
	if !ok {
		if p, err := url.Parse(u); err == nil {
			u = p.JoinPath("fail").String()
		}
	}
	n.enqueue(request{method: http.MethodGet, url: u})
}

// CheckRPO raises rpo_exceeded when the oldest unsaved change is older than
// RPOAlert, and rpo_recovered once it no longer is.
func (n *Notifier) CheckRPO(unsavedSince time.Time, unsaved bool) {
	if n.cfg.RPOAlert <= 0 {
		return
	}
	age := time.Duration(0)
	if unsaved {
		age = n.cfg.Clock.Now().Sub(unsavedSince)
	}
	n.mu.Lock()
	late := age > n.cfg.RPOAlert
	changed := late != n.late
	n.late = late
	n.mu.Unlock()
	switch {
	case changed && late:
		n.emit(RPOExceeded, fmt.Sprintf("changes are unsaved for %s (over --rpo-alert %s): losing the host now would lose them", age.Round(time.Second), n.cfg.RPOAlert), age.Seconds())
	case changed:
		n.emit(RPORecovered, "every change older than --rpo-alert is saved", age.Seconds())
	}
}

func (n *Notifier) emit(kind, msg string, unsaved float64) {
	body, _ := json.Marshal(Event{Event: kind, Session: n.cfg.Session, Host: n.cfg.Host, Time: n.cfg.Clock.Now().UTC(), Message: msg, UnsavedSeconds: unsaved})
	for _, u := range n.cfg.URLs {
		n.enqueue(request{method: http.MethodPost, url: u, body: body})
	}
}

func (n *Notifier) enqueue(r request) {
	select {
	case n.queue <- r:
	default:
		n.failures.Inc()
		n.cfg.Logger.Warn("notification dropped: the queue is full", slog.String("url", redact(r.url)))
	}
}

// Run delivers queued notifications until ctx ends, and checks the RPO
// every tick with unsaved (the saver's UnsavedSince).
func (n *Notifier) Run(ctx context.Context, tick <-chan time.Time, unsaved func() (time.Time, bool)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			n.CheckRPO(unsaved())
			n.ping(true)
		case r := <-n.queue:
			if err := n.deliver(ctx, r); err != nil && ctx.Err() == nil {
				n.failures.Inc()
				n.cfg.Logger.Warn("notification not delivered", slog.String("url", redact(r.url)), slog.String("error", err.Error()))
			}
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, r request) error {
	var body any
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return errors.New(redactErr(err, r.url))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// redact keeps only the scheme and host of u for logs: webhook and ping
// URLs carry their secret in the path or query.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Scheme + "://" + p.Host + "/…"
}

func redactErr(err error, u string) string { return strings.ReplaceAll(err.Error(), u, redact(u)) }
