// Package retention owns which saves of a session are kept: the retention
// policy (the --keep-* rules of `pitr prune` and `pitr serve`), the pure
// decision over a list of save times (Apply), and applying it to a store
// (Prune), which deletes the manifests of the saves no rule keeps. Chunks are
// left to gc.
//
// The rules follow restic's `forget`:
//
//   - A save is kept if any rule keeps it (the union); every rule that keeps
//     it is listed in its Decision's Reasons.
//   - The newest save is always kept, whatever the policy.
//   - Durations (--keep-within, --keep-within-hourly, …) are measured back
//     from the newest save's time, never from the clock: a session that has
//     been idle for a year still keeps its last day of saves.
//   - A save is "within d" when it was taken strictly after newest − d.
//   - Bucket rules group saves by hour, calendar day, ISO week (Monday to
//     Sunday) or calendar month in a time zone (the local one in the CLI) and
//     keep the newest save of each bucket. --keep-hourly N and friends keep
//     the N newest buckets that have saves (an idle day does not use up a
//     daily slot); --keep-within-hourly D and friends keep one save per
//     bucket for the saves within D of the newest.
//   - Hours are real hours: when clocks go back, the repeated local hour is
//     two buckets (labelled with their zone abbreviations, e.g. EDT and EST).
//   - Saves with equal times are ordered by id: the greater id counts as the
//     newer. The result never depends on the order of the input.
package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors.
var (
	// ErrNoPolicy: the policy has no rule. Pruning with it would delete every
	// save but the newest, so it is refused, as restic refuses `forget`
	// without a policy.
	ErrNoPolicy = errors.New("no retention rule given (use --keep-last, --keep-within, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly or --keep-within-hourly/-daily/-weekly/-monthly)")
	// ErrBadPolicy: a rule has a negative count or duration.
	ErrBadPolicy = errors.New("invalid retention policy")
	// ErrBadDuration: a string is not a retention duration.
	ErrBadDuration = errors.New("invalid duration")
)

// Policy is a retention policy: the union of its rules. A zero field is a
// rule that is off.
type Policy struct {
	// Last keeps the Last newest saves.
	Last int
	// Within keeps every save taken within Within of the newest save.
	Within time.Duration
	// Hourly, Daily, Weekly and Monthly keep the newest save of each of the
	// N newest hours, days, ISO weeks or months that have saves.
	Hourly, Daily, Weekly, Monthly int
	// WithinHourly, WithinDaily, WithinWeekly and WithinMonthly keep the
	// newest save of each hour, day, ISO week or month, among the saves
	// taken within that duration of the newest save.
	WithinHourly, WithinDaily, WithinWeekly, WithinMonthly time.Duration
}

// Day is 24 hours: the unit of "7d" (retention ignores DST here; calendar
// days matter only for daily buckets).
const Day = 24 * time.Hour

// Default is the policy `pitr serve` applies unless told otherwise (SPEC):
// every save of the last 24 hours, one per hour for 7 days and one per day
// for 90 days, all measured back from the newest save. As flags:
// --keep-within 24h --keep-within-hourly 7d --keep-within-daily 90d.
func Default() Policy {
	return Policy{Within: Day, WithinHourly: 7 * Day, WithinDaily: 90 * Day}
}

// IsZero reports whether p has no rule at all.
func (p Policy) IsZero() bool { return p == Policy{} }

// Validate rejects negative counts and durations.
func (p Policy) Validate() error {
	for _, f := range p.fields() {
		if f.n < 0 {
			return fmt.Errorf("--%s %d: %w: must not be negative", f.flag, f.n, ErrBadPolicy)
		}
		if f.d < 0 {
			return fmt.Errorf("--%s %s: %w: must not be negative", f.flag, f.d, ErrBadPolicy)
		}
	}
	return nil
}

// String returns the policy as the flags that set it, e.g.
// "--keep-last 3 --keep-within 24h", or "none" for the zero policy.
func (p Policy) String() string {
	var parts []string
	for _, f := range p.fields() {
		switch {
		case f.isCount && f.n != 0:
			parts = append(parts, "--"+f.flag+" "+strconv.Itoa(f.n))
		case !f.isCount && f.d != 0:
			parts = append(parts, "--"+f.flag+" "+FormatDuration(f.d))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// field is one rule of a Policy, for String, Validate and the flags.
type field struct {
	flag    string
	isCount bool
	n       int
	d       time.Duration
	nPtr    *int
	dPtr    *time.Duration
	usage   string
}

// fields lists p's rules in flag order. The pointers point into p.
func (p *Policy) fields() []field {
	count := func(flag string, v *int, usage string) field {
		return field{flag: flag, isCount: true, n: *v, nPtr: v, usage: usage}
	}
	dur := func(flag string, v *time.Duration, usage string) field {
		return field{flag: flag, d: *v, dPtr: v, usage: usage}
	}
	return []field{
		count("keep-last", &p.Last, "keep the `N` newest saves"),
		dur("keep-within", &p.Within, "keep every save taken within `DURATION` of the newest save (e.g. 24h, 7d, 2w)"),
		count("keep-hourly", &p.Hourly, "keep the newest save of each of the `N` newest hours that have saves"),
		count("keep-daily", &p.Daily, "keep the newest save of each of the `N` newest days that have saves"),
		count("keep-weekly", &p.Weekly, "keep the newest save of each of the `N` newest ISO weeks that have saves"),
		count("keep-monthly", &p.Monthly, "keep the newest save of each of the `N` newest months that have saves"),
		dur("keep-within-hourly", &p.WithinHourly, "keep the newest save of each hour for the saves within `DURATION` of the newest save"),
		dur("keep-within-daily", &p.WithinDaily, "keep the newest save of each day for the saves within `DURATION` of the newest save"),
		dur("keep-within-weekly", &p.WithinWeekly, "keep the newest save of each ISO week for the saves within `DURATION` of the newest save"),
		dur("keep-within-monthly", &p.WithinMonthly, "keep the newest save of each month for the saves within `DURATION` of the newest save"),
	}
}
