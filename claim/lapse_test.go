package claim

import (
	"testing"
	"time"
)

func TestLapsed(t *testing.T) {
	t0 := time.Date(2026, 1, 12, 15, 34, 0, 0, time.UTC)
	const ttl = 30 * time.Second
	cases := []struct {
		renewedAgo time.Duration // on our clock, at the decision
		watched    time.Duration
		want       bool
	}{
		{0, 0, false},
		{29 * time.Second, 29 * time.Second, false},
		{30 * time.Second, 29 * time.Second, true}, // lapsed by the clocks, watched > TTL/2
		{30 * time.Second, 30 * time.Second, true},
		{time.Hour, 14 * time.Second, false}, // too short a watch to trust the clocks
		{time.Hour, 15 * time.Second, true},
		{-time.Hour, 29 * time.Second, false}, // renewed "in the future": our clock is behind
		{-time.Hour, 30 * time.Second, true},  // a whole TTL watched decides alone
	}
	for _, tc := range cases {
		now := t0.Add(time.Hour)
		rec := &Record{RenewedAt: now.Add(-tc.renewedAgo)}
		if got := lapsed(rec, ttl, tc.watched, now); got != tc.want {
			t.Errorf("renewed %s ago, watched %s: lapsed = %t, want %t", tc.renewedAgo, tc.watched, got, tc.want)
		}
	}
}
