package retention

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Save is one save as retention sees it: its id and when it was taken.
type Save struct {
	ID   string
	Time time.Time
}

// Decision is what the policy decided for one save. Keep is true exactly
// when Reasons is not empty; Reasons names every rule that kept the save,
// in rule order: "last 3", "within 24h", "hourly 2025-01-12 15h CET",
// "daily 2025-01-12", "weekly 2025-W02", "monthly 2025-01" (bucket rules
// given as durations add "(within 7d)"), and "newest".
type Decision struct {
	Save
	Keep    bool
	Reasons []string
}

// Apply decides which saves p keeps. It is a pure function of its arguments:
// durations are measured back from the newest save, buckets are taken in loc
// (time.Local when nil), and the result does not depend on the order of
// saves. It returns one Decision per save, oldest first (equal times ordered
// by id). Rules with a zero or negative value are off; with no rule only the
// newest save is kept (Prune refuses such a policy).
func Apply(saves []Save, p Policy, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.Local
	}
	ds := make([]Decision, len(saves))
	for i, s := range saves {
		ds[i].Save = s
	}
	// Newest first: rules that count (last N, N buckets) walk from the newest.
	slices.SortFunc(ds, func(a, b Decision) int { return -compareSaves(a.Save, b.Save) })
	if len(ds) == 0 {
		return ds
	}
	newest := ds[0].Time
	rules := p.bucketRules(newest)
	for i := range ds {
		d := &ds[i]
		if i < p.Last {
			d.Reasons = append(d.Reasons, "last "+strconv.Itoa(p.Last))
		}
		if p.Within > 0 && isWithin(d.Time, newest, p.Within) {
			d.Reasons = append(d.Reasons, "within "+FormatDuration(p.Within))
		}
		for _, r := range rules {
			if reason, ok := r.keep(d.Time, loc); ok {
				d.Reasons = append(d.Reasons, reason)
			}
		}
		if i == 0 {
			d.Reasons = append(d.Reasons, "newest")
		}
		d.Keep = len(d.Reasons) > 0
	}
	slices.Reverse(ds)
	return ds
}

// compareSaves orders saves by time, then by id.
func compareSaves(a, b Save) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// isWithin reports whether t lies strictly after newest − d (restic's rule).
func isWithin(t, newest time.Time, d time.Duration) bool {
	return t.After(newest.Add(-d))
}

// unit is a kind of bucket.
type unit int

const (
	hour unit = iota
	day
	week
	month
)

var unitNames = [...]string{hour: "hourly", day: "daily", week: "weekly", month: "monthly"}

// bucket returns the key of t's bucket of kind u in loc. Keys of different
// buckets differ; keys are not required to be ordered, since a zone's
// wall clock may go backwards.
func (u unit) bucket(t time.Time, loc *time.Location) int64 {
	lt := t.In(loc)
	switch u {
	case hour:
		return hourStart(lt).Unix()
	case day:
		y, m, d := lt.Date()
		return int64(y)*10000 + int64(m)*100 + int64(d)
	case week:
		y, w := lt.ISOWeek()
		return int64(y)*100 + int64(w)
	default:
		y, m, _ := lt.Date()
		return int64(y)*100 + int64(m)
	}
}

// label names t's bucket of kind u in loc, for a reason.
func (u unit) label(t time.Time, loc *time.Location) string {
	lt := t.In(loc)
	switch u {
	case hour:
		return lt.Format("2006-01-02 15h MST")
	case day:
		return lt.Format("2006-01-02")
	case week:
		y, w := lt.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	default:
		return lt.Format("2006-01")
	}
}

// hourStart returns lt minus its minutes, seconds and nanoseconds, as an
// instant: the two local 01h of a night when clocks go back are different
// hourly buckets, and so are the hours around a 30-minute shift.
func hourStart(lt time.Time) time.Time {
	return lt.Add(-(time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())))
}

// bucketRule keeps the newest save of each bucket: of the count newest
// buckets (count > 0), or of the buckets of the saves taken after cutoff.
type bucketRule struct {
	unit   unit
	count  int
	within time.Duration
	cutoff time.Time
	seen   map[int64]struct{}
}

// bucketRules returns p's bucket rules, in rule order, fresh for one walk
// over saves sorted newest first.
func (p Policy) bucketRules(newest time.Time) []*bucketRule {
	var rs []*bucketRule
	for u, n := range []int{hour: p.Hourly, day: p.Daily, week: p.Weekly, month: p.Monthly} {
		if n > 0 {
			rs = append(rs, &bucketRule{unit: unit(u), count: n, seen: map[int64]struct{}{}})
		}
	}
	for u, d := range []time.Duration{hour: p.WithinHourly, day: p.WithinDaily, week: p.WithinWeekly, month: p.WithinMonthly} {
		if d > 0 {
			rs = append(rs, &bucketRule{unit: unit(u), within: d, cutoff: newest.Add(-d), seen: map[int64]struct{}{}})
		}
	}
	return rs
}

// keep is called for each save, newest first. It keeps the save if it is
// the first (so the newest) seen in a bucket the rule still covers.
func (r *bucketRule) keep(t time.Time, loc *time.Location) (string, bool) {
	if r.within > 0 && !t.After(r.cutoff) {
		return "", false
	}
	if r.count > 0 && len(r.seen) >= r.count {
		return "", false
	}
	k := r.unit.bucket(t, loc)
	if _, ok := r.seen[k]; ok {
		return "", false
	}
	r.seen[k] = struct{}{}
	reason := unitNames[r.unit] + " " + r.unit.label(t, loc)
	if r.within > 0 {
		reason += " (within " + FormatDuration(r.within) + ")"
	}
	return reason, true
}
