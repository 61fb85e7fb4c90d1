package gcsafety

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultGrace(t *testing.T) {
	if DefaultGrace.Duration() != time.Hour || DefaultGrace.String() != "1h0m0s" {
		t.Errorf("DefaultGrace = %s, want 1h", DefaultGrace)
	}
	for _, g := range []Grace{0, Grace(-time.Second)} {
		if got := g.OrDefault(); got != DefaultGrace {
			t.Errorf("Grace(%s).OrDefault() = %s, want the default", g, got)
		}
	}
	if g := Grace(5 * time.Minute); g.OrDefault() != g {
		t.Errorf("OrDefault replaced a grace it was given: %s", g.OrDefault())
	}
}

// A save must commit within a quarter of the grace: the deadline of the
// default grace is 15 minutes.
func TestSaveDeadlineIsAQuarter(t *testing.T) {
	for g, want := range map[Grace]time.Duration{
		DefaultGrace:                             15 * time.Minute,
		Grace(400 * time.Millisecond):            100 * time.Millisecond,
		Grace(1000 * time.Hour):                  250 * time.Hour,
		Grace(3 * time.Nanosecond):               0, // rounds down: never later than G/4
		Grace(4*time.Minute + 3*time.Nanosecond): time.Minute,
	} {
		if got := g.SaveDeadline(); got != want {
			t.Errorf("Grace(%s).SaveDeadline() = %s, want %s", g, got, want)
		}
	}
}

// The cutoff is T0 − G, and only objects strictly before it expire: an
// object exactly G old stays.
func TestCutoffAndExpired(t *testing.T) {
	t0 := time.Date(2026, 1, 12, 15, 34, 0, 0, time.UTC)
	cutoff := DefaultGrace.Cutoff(t0)
	if want := t0.Add(-time.Hour); !cutoff.Equal(want) {
		t.Fatalf("Cutoff(%s) = %s, want %s", t0, cutoff, want)
	}
	cases := []struct {
		age  time.Duration
		want bool
	}{
		{time.Hour + time.Nanosecond, true},
		{2 * time.Hour, true},
		{time.Hour, false}, // exactly G old: kept
		{time.Hour - time.Nanosecond, false},
		{0, false},
		{-time.Minute, false}, // the store's clock ahead of gc's
	}
	for _, c := range cases {
		if got := Expired(t0.Add(-c.age), cutoff); got != c.want {
			t.Errorf("object %s old: expired %v, want %v", c.age, got, c.want)
		}
	}
	if zero := Grace(0).Cutoff(t0); !zero.Equal(t0) || Expired(t0, zero) || !Expired(t0.Add(-time.Nanosecond), zero) {
		t.Errorf("grace 0: cutoff %s; every object older than T0 expires, none younger", zero)
	}
}

// The rules fit together as the proof in package gc needs: a pack
// uploaded during a save that commits by its deadline is younger than the
// cutoff of any gc run that read its T0 before the commit, by at least
// 3G/4.
func TestAPackOfASaveInFlightNeverExpires(t *testing.T) {
	for _, g := range []Grace{DefaultGrace, Grace(time.Minute), Grace(400 * time.Millisecond)} {
		start := time.Date(2026, 1, 12, 15, 34, 0, 0, time.UTC)
		uploaded := start                       // the earliest a save uploads
		latestT0 := start.Add(g.SaveDeadline()) // a gc that read T0 right before the commit
		cutoff := g.Cutoff(latestT0)
		if Expired(uploaded, cutoff) {
			t.Errorf("grace %s: a pack uploaded at the save's start expires for a gc started at its deadline", g)
		}
		if margin := uploaded.Sub(cutoff); margin < 3*g.Duration()/4 {
			t.Errorf("grace %s: a pack is %s younger than the cutoff, want at least 3G/4", g, margin)
		}
	}
}

func TestCheckRefusesANegativeGrace(t *testing.T) {
	for _, g := range []Grace{0, DefaultGrace, Grace(time.Nanosecond)} {
		if err := g.Check(); err != nil {
			t.Errorf("Grace(%s).Check() = %v", g, err)
		}
	}
	err := Grace(-time.Second).Check()
	if err == nil || !strings.Contains(err.Error(), "-1s") || !strings.Contains(err.Error(), "negative") {
		t.Errorf("Check of a negative grace: %v, want an error naming it", err)
	}
}

// Only a grace shorter than the one servers assume is shorter than
// savers'.
func TestShorterThanSavers(t *testing.T) {
	for g, want := range map[Grace]bool{
		0:                     true,
		Grace(time.Minute):    true,
		DefaultGrace - 1:      true,
		DefaultGrace:          false,
		DefaultGrace + 1:      false,
		Grace(24 * time.Hour): false,
	} {
		if got := g.ShorterThanSavers(); got != want {
			t.Errorf("Grace(%s).ShorterThanSavers() = %v, want %v", g, got, want)
		}
	}
}
