package replicate

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the saver's Prometheus metrics.
type Metrics struct {
	saves         *prometheus.CounterVec
	failures      prometheus.Counter
	duration      prometheus.Histogram
	bytesUploaded prometheus.Counter
	chunksUp      prometheus.Counter
	lastSuccess   prometheus.Gauge
	fenced        prometheus.Gauge
	localFailures prometheus.Counter
	// savingAge reports how long the running save has run (0: none); the
	// saver sets it.
	savingAge atomic.Pointer[func() float64]
	// unsavedAge reports the age of the oldest unsaved change (0: none).
	unsavedAge atomic.Pointer[func() float64]
}

// NewMetrics registers the saver's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pitr_saves_total",
			Help: "Saves attempted, by result: ok, unchanged or error.",
		}, []string{"result"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pitr_save_failures_total",
			Help: "Save attempts that failed (each retry counts).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pitr_save_duration_seconds",
			Help:    "Duration of successful saves that wrote a manifest.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		bytesUploaded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pitr_save_bytes_uploaded_total",
			Help: "Compressed bytes uploaded by saves (chunks, chunk lists and manifests).",
		}),
		chunksUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pitr_save_chunks_uploaded_total",
			Help: "Chunks uploaded by saves.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pitr_last_successful_save_timestamp_seconds",
			Help: "Unix time of the last save that reached the store (or found nothing changed).",
		}),
		localFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pitr_local_write_failures_total",
			Help: "Writes of the local data dir that failed (saves went on to the store).",
		}),
		fenced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pitr_fenced",
			Help: "1 when another server took over this session and this one stopped saving.",
		}),
	}
	for _, r := range []string{"ok", "unchanged", "error"} {
		m.saves.WithLabelValues(r)
	}
	inProgress := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pitr_save_in_progress_seconds",
		Help: "How long the save running now has been running (0 when none is); a large value means saves are stuck.",
	}, func() float64 {
		if f := m.savingAge.Load(); f != nil {
			return (*f)()
		}
		return 0
	})
	unsaved := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "pitr_unsaved_seconds",
		Help: "Age of the oldest change not yet in a committed save (0 when everything is saved): what losing the host would lose.",
	}, func() float64 {
		if f := m.unsavedAge.Load(); f != nil {
			return (*f)()
		}
		return 0
	})
	reg.MustRegister(unsaved)
	reg.MustRegister(m.saves, m.failures, m.duration, m.bytesUploaded, m.chunksUp, m.lastSuccess, m.fenced, m.localFailures, inProgress)
	return m
}
