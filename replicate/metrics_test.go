package replicate

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pitr-dev/pitr/session"
)

func TestMetricsFollowSaves(t *testing.T) {
	st := newStore(t)
	s := session.New()
	fill(t, s, 3, 100, 12)
	sv, _ := newSaver(t, s, st)
	m := NewMetrics(prometheus.NewRegistry())
	sv.cfg.Metrics = m
	ctx := context.Background()
	r, err := sv.Save(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Save(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	st.down.Store(true)
	fill(t, s, 4, 100, 13)
	if _, err := sv.Save(ctx, "api"); err == nil {
		t.Fatal("save with the store down succeeded")
	}
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"ok saves", m.saves.WithLabelValues("ok"), 1},
		{"unchanged saves", m.saves.WithLabelValues("unchanged"), 1},
		{"failed saves", m.saves.WithLabelValues("error"), 1},
		{"failures", m.failures, 1},
		{"bytes uploaded", m.bytesUploaded, float64(r.BytesUploaded)},
		{"chunks uploaded", m.chunksUp, float64(r.ChunksUploaded)},
		{"fenced", m.fenced, 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if testutil.ToFloat64(m.lastSuccess) == 0 {
		t.Error("last successful save time not set")
	}
	if testutil.CollectAndCount(m.duration) != 1 {
		t.Error("no save duration observed")
	}
}
