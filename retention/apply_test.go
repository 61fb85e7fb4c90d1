package retention

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zoneinfo
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// tm parses "2006-01-02 15:04:05.000" in loc, or in UTC with a final "Z".
func tm(t testing.TB, loc *time.Location, s string) time.Time {
	t.Helper()
	if u, ok := strings.CutSuffix(s, "Z"); ok {
		s, loc = u, time.UTC
	}
	v, err := time.ParseInLocation("2006-01-02 15:04:05.000", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// kept maps the ids of kept saves to their reasons.
func kept(ds []Decision) map[string][]string {
	out := map[string][]string{}
	for _, d := range ds {
		if d.Keep {
			out[d.ID] = d.Reasons
		}
	}
	return out
}

// checkShape checks the invariants of any Apply result.
func checkShape(t *testing.T, in []Save, ds []Decision) {
	t.Helper()
	if len(ds) != len(in) {
		t.Fatalf("%d decisions for %d saves", len(ds), len(in))
	}
	for i, d := range ds {
		if d.Keep != (len(d.Reasons) > 0) {
			t.Errorf("save %s: Keep %v with reasons %q", d.ID, d.Keep, d.Reasons)
		}
		if i > 0 && compareSaves(ds[i-1].Save, d.Save) > 0 {
			t.Errorf("decisions not oldest first at %d: %s after %s", i, d.ID, ds[i-1].ID)
		}
	}
	if len(ds) > 0 {
		last := ds[len(ds)-1]
		if !last.Keep || last.Reasons[len(last.Reasons)-1] != "newest" {
			t.Errorf("newest save %s: keep %v reasons %q", last.ID, last.Keep, last.Reasons)
		}
	}
}

func TestApply(t *testing.T) {
	utc := time.UTC
	ny := mustLoc(t, "America/New_York")
	lordHowe := mustLoc(t, "Australia/Lord_Howe")
	type save struct{ id, at string }
	cases := []struct {
		name  string
		loc   *time.Location
		p     Policy
		saves []save // times in loc, or in UTC when they end in Z
		want  map[string][]string
	}{
		{"hour edge: 14:59:59.999 and 15:00 are two hours", utc, Policy{Hourly: 2},
			[]save{{"a", "2025-01-12 14:59:59.999"}, {"b", "2025-01-12 15:00:00.000"}, {"c", "2025-01-12 14:30:00.000"}},
			map[string][]string{
				"b": {"hourly 2025-01-12 15h UTC", "newest"},
				"a": {"hourly 2025-01-12 14h UTC"},
			}},
		{"hour: the newest save of the hour; empty hours do not count", utc, Policy{Hourly: 3},
			[]save{{"a", "2025-01-12 15:00:00.000"}, {"b", "2025-01-12 15:59:59.999"}, {"c", "2025-01-12 13:10:00.000"}},
			map[string][]string{
				"b": {"hourly 2025-01-12 15h UTC", "newest"},
				"c": {"hourly 2025-01-12 13h UTC"},
			}},
		{"day edge in New York", ny, Policy{Daily: 2},
			[]save{{"a", "2025-01-12 23:59:59.999"}, {"b", "2025-01-13 00:00:00.000"}, {"c", "2025-01-12 12:00:00.000"}},
			map[string][]string{
				"b": {"daily 2025-01-13", "newest"},
				"a": {"daily 2025-01-12"},
			}},
		{"the same instants in UTC: other days", utc, Policy{Daily: 2},
			// New York 2025-01-12 23:59:59.999, 2025-01-13 00:00, 2025-01-12 12:00.
			[]save{{"a", "2025-01-13 04:59:59.999"}, {"b", "2025-01-13 05:00:00.000"}, {"c", "2025-01-12 17:00:00.000"}},
			map[string][]string{
				"b": {"daily 2025-01-13", "newest"},
				"c": {"daily 2025-01-12"},
			}},
		{"DST starts in New York: 01:59:59.999 EST and 03:00 EDT are two hours of one 23-hour day", ny, Policy{Hourly: 10, Daily: 2},
			[]save{{"a", "2025-03-09 01:59:59.999"}, {"b", "2025-03-09 03:00:00.000"}, {"c", "2025-03-09 23:59:00.000"}, {"d", "2025-03-10 00:00:00.000"}},
			map[string][]string{
				"d": {"hourly 2025-03-10 00h EDT", "daily 2025-03-10", "newest"},
				"c": {"hourly 2025-03-09 23h EDT", "daily 2025-03-09"},
				"b": {"hourly 2025-03-09 03h EDT"},
				"a": {"hourly 2025-03-09 01h EST"},
			}},
		{"DST ends in New York: the repeated 01h is two hours", ny, Policy{Hourly: 5, Daily: 1},
			// 01:30 EDT, 01:59:59.999 EDT, 01:00 EST, 01:30 EST.
			[]save{{"a", "2025-11-02 05:30:00.000Z"}, {"b", "2025-11-02 05:59:59.999Z"}, {"c", "2025-11-02 06:00:00.000Z"}, {"e", "2025-11-02 06:30:00.000Z"}},
			map[string][]string{
				"e": {"hourly 2025-11-02 01h EST", "daily 2025-11-02", "newest"},
				"b": {"hourly 2025-11-02 01h EDT"},
			}},
		{"DST starts on Lord Howe Island: 30 minutes forward, 01h and 02h stay apart", lordHowe, Policy{Hourly: 5},
			// 2024-10-06 01:40 +1030 and 02:40 +11 (02:00 became 02:30).
			[]save{{"a", "2024-10-05 15:10:00.000Z"}, {"b", "2024-10-05 15:40:00.000Z"}},
			map[string][]string{
				"b": {"hourly 2024-10-06 02h +11", "newest"},
				"a": {"hourly 2024-10-06 01h +1030"},
			}},
		{"DST ends in New York: the 25-hour day is one day", ny, Policy{Daily: 2},
			[]save{{"a", "2025-11-02 00:10:00.000"}, {"b", "2025-11-02 23:50:00.000"}, {"c", "2025-11-01 12:00:00.000"}},
			map[string][]string{
				"b": {"daily 2025-11-02", "newest"},
				"c": {"daily 2025-11-01"},
			}},
		{"ISO week: Sunday 23:59:59.999 and Monday 00:00 are two weeks", utc, Policy{Weekly: 2},
			[]save{{"a", "2025-01-12 23:59:59.999"}, {"b", "2025-01-13 00:00:00.000"}, {"c", "2025-01-06 00:00:00.000"}},
			map[string][]string{
				"b": {"weekly 2025-W03", "newest"},
				"a": {"weekly 2025-W02"},
			}},
		{"ISO week: Monday 2024-12-30 starts 2025-W01", utc, Policy{Weekly: 3},
			[]save{{"a", "2024-12-29 12:00:00.000"}, {"b", "2024-12-30 12:00:00.000"}, {"c", "2025-01-05 12:00:00.000"}},
			map[string][]string{
				"c": {"weekly 2025-W01", "newest"},
				"a": {"weekly 2024-W52"},
			}},
		{"ISO week: 2020 has a week 53 that ends on 2021-01-03", utc, Policy{Weekly: 2},
			[]save{{"a", "2020-12-27 12:00:00.000"}, {"b", "2020-12-31 12:00:00.000"}, {"c", "2021-01-03 23:59:59.999"}, {"d", "2021-01-04 00:00:00.000"}},
			map[string][]string{
				"d": {"weekly 2021-W01", "newest"},
				"c": {"weekly 2020-W53"},
			}},
		{"month edges", utc, Policy{Monthly: 3},
			[]save{{"a", "2025-01-31 23:59:59.999"}, {"b", "2025-02-01 00:00:00.000"}, {"c", "2025-02-28 23:59:59.999"}, {"d", "2025-03-01 00:00:00.000"}},
			map[string][]string{
				"d": {"monthly 2025-03", "newest"},
				"c": {"monthly 2025-02"},
				"a": {"monthly 2025-01"},
			}},
		{"month edge in New York: 2025-02-01 03:00Z is still January", ny, Policy{Monthly: 2},
			[]save{{"a", "2025-01-31 22:00:00.000"}, {"b", "2025-02-01 00:00:00.000"}},
			map[string][]string{
				"b": {"monthly 2025-02", "newest"},
				"a": {"monthly 2025-01"},
			}},
		{"ties: the greater id is the newer", utc, Policy{Last: 1},
			[]save{{"y", "2025-01-12 15:00:00.000"}, {"x", "2025-01-12 15:00:00.000"}, {"z", "2025-01-12 14:00:00.000"}},
			map[string][]string{"y": {"last 1", "newest"}}},
		{"ties within a bucket", utc, Policy{Hourly: 5},
			[]save{{"x", "2025-01-12 15:30:00.000"}, {"y", "2025-01-12 15:30:00.000"}, {"w", "2025-01-12 15:10:00.000"}},
			map[string][]string{"y": {"hourly 2025-01-12 15h UTC", "newest"}}},
		{"single save, no rule: kept as the newest", utc, Policy{},
			[]save{{"a", "2025-01-12 15:00:00.000"}},
			map[string][]string{"a": {"newest"}}},
		{"no rule: only the newest", utc, Policy{},
			[]save{{"a", "2025-01-12 15:00:00.000"}, {"b", "2025-01-12 16:00:00.000"}},
			map[string][]string{"b": {"newest"}}},
		{"keep-within is measured back from the newest save and excludes its edge", utc, Policy{Within: 24 * time.Hour},
			[]save{{"n", "2020-06-01 12:00:00.000"}, {"a", "2020-05-31 12:00:00.001"}, {"b", "2020-05-31 12:00:00.000"}, {"c", "2020-05-30 12:00:00.000"}},
			map[string][]string{
				"n": {"within 24h", "newest"},
				"a": {"within 24h"},
			}},
		{"keep-daily N counts only days that have saves", utc, Policy{Daily: 3},
			[]save{{"a", "2025-01-01 12:00:00.000"}, {"b", "2025-01-05 12:00:00.000"}, {"c", "2025-01-09 12:00:00.000"}, {"d", "2025-01-20 12:00:00.000"}},
			map[string][]string{
				"d": {"daily 2025-01-20", "newest"},
				"c": {"daily 2025-01-09"},
				"b": {"daily 2025-01-05"},
			}},
		{"keep-within-daily is bounded by time, not by a count", utc, Policy{WithinDaily: 3 * Day},
			[]save{{"a", "2025-01-09 12:00:00.000"}, {"b", "2025-01-17 12:00:00.000"}, {"c", "2025-01-17 12:00:00.001"}, {"d", "2025-01-18 12:00:00.000"}, {"e", "2025-01-20 12:00:00.000"}},
			map[string][]string{
				"e": {"daily 2025-01-20 (within 3d)", "newest"},
				"d": {"daily 2025-01-18 (within 3d)"},
				"c": {"daily 2025-01-17 (within 3d)"},
			}},
		{"the union lists every rule that keeps a save", utc, Policy{Last: 2, Within: time.Hour, Daily: 2},
			[]save{{"a", "2025-01-12 10:00:00.000"}, {"b", "2025-01-12 23:00:00.000"}, {"c", "2025-01-13 08:00:00.000"}, {"d", "2025-01-13 08:30:00.000"}},
			map[string][]string{
				"d": {"last 2", "within 1h", "daily 2025-01-13", "newest"},
				"c": {"last 2", "within 1h"},
				"b": {"daily 2025-01-12"},
			}},
		{"keep-hourly and keep-within-hourly both", utc, Policy{Hourly: 1, WithinHourly: 2 * time.Hour},
			[]save{{"a", "2025-01-12 10:00:00.000"}, {"b", "2025-01-12 10:30:00.000"}, {"c", "2025-01-12 11:15:00.000"}, {"d", "2025-01-12 09:10:00.000"}},
			map[string][]string{
				"c": {"hourly 2025-01-12 11h UTC", "hourly 2025-01-12 11h UTC (within 2h)", "newest"},
				"b": {"hourly 2025-01-12 10h UTC (within 2h)"},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := make([]Save, len(c.saves))
			for j, s := range c.saves {
				in[j] = Save{ID: s.id, Time: tm(t, c.loc, s.at)}
			}
			got := Apply(in, c.p, c.loc)
			checkShape(t, in, got)
			if k := kept(got); !reflect.DeepEqual(k, c.want) {
				t.Errorf("kept:\n got %q\nwant %q", k, c.want)
			}
			rev := slices.Clone(in)
			slices.Reverse(rev)
			if again := Apply(rev, c.p, c.loc); !reflect.DeepEqual(again, got) {
				t.Errorf("reversed input changed the result:\n%v\n%v", again, got)
			}
		})
	}
}

func TestApplyEmpty(t *testing.T) {
	if got := Apply(nil, Default(), nil); len(got) != 0 {
		t.Fatalf("Apply(nil) = %v", got)
	}
}

// TestApplyDefaultHistory runs the serve default on a save every 10 minutes
// for 120 days, the newest at 23:50 UTC. By hand: within 24h keeps the 144
// newest saves (k = 0..143, k×10 min back; k = 144 is exactly 24h back and
// not within). Hourly within 7d covers k = 0..1007: 168 whole hours whose
// newest saves are the xx:50 ones; 24 of them are already within 24h, so
// 144 more. Daily within 90d covers 90 whole days whose newest saves are at
// 23:50; the 7 newest days' are already kept, so 83 more. 144+144+83 = 371.
func TestApplyDefaultHistory(t *testing.T) {
	newest := time.Date(2025, 4, 30, 23, 50, 0, 0, time.UTC)
	const n = 120 * 144
	in := make([]Save, n)
	for k := range n {
		at := newest.Add(-time.Duration(k) * 10 * time.Minute)
		in[k] = Save{ID: at.Format("20060102T150405.000Z"), Time: at}
	}
	got := Apply(in, Default(), time.UTC)
	checkShape(t, in, got)
	var total, within, hourOnly, dayOnly int
	for _, d := range got {
		if !d.Keep {
			continue
		}
		total++
		age := newest.Sub(d.Time)
		switch {
		case age < Day:
			within++
			if !strings.HasPrefix(d.Reasons[0], "within 24h") {
				t.Errorf("%s: reasons %q", d.ID, d.Reasons)
			}
		case age < 7*Day:
			hourOnly++
			if d.Time.Minute() != 50 {
				t.Errorf("%s kept within 7d but not the newest of its hour", d.ID)
			}
		case age < 90*Day:
			dayOnly++
			if d.Time.Hour() != 23 || d.Time.Minute() != 50 || len(d.Reasons) != 1 || d.Reasons[0] != "daily "+d.Time.Format("2006-01-02")+" (within 90d)" {
				t.Errorf("%s kept with %q", d.ID, d.Reasons)
			}
		default:
			t.Errorf("%s kept though older than 90 days: %q", d.ID, d.Reasons)
		}
	}
	if total != 371 || within != 144 || hourOnly != 144 || dayOnly != 83 {
		t.Fatalf("kept %d (within 24h %d, hourly %d, daily %d), want 371 (144, 144, 83)", total, within, hourOnly, dayOnly)
	}
}

func TestPolicy(t *testing.T) {
	if !(Policy{}).IsZero() || Default().IsZero() || (Policy{Monthly: 1}).IsZero() {
		t.Error("IsZero wrong")
	}
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "none"},
		{Default(), "--keep-within 24h --keep-within-hourly 7d --keep-within-daily 90d"},
		{Policy{Last: 3, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, WithinMonthly: 365 * Day, WithinWeekly: 90 * time.Minute},
			"--keep-last 3 --keep-hourly 24 --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-within-weekly 1h30m --keep-within-monthly 365d"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
	if err := Default().Validate(); err != nil {
		t.Error(err)
	}
	for _, p := range []Policy{{Last: -1}, {Within: -time.Second}, {Monthly: -2}, {WithinDaily: -Day}} {
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("Validate(%+v) = %v", p, err)
		}
	}
}
