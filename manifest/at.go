package manifest

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// TimeLayout is the one form in which pitr shows a time: RFC 3339 with
// milliseconds, 2025-01-12T15:34:45.123Z in UTC. It is also how manifests
// store the time of a save.
const TimeLayout = timeLayout

// FormatTime formats t in UTC in TimeLayout. ParseAt reads the result back
// as the same instant whatever the local time zone, so a time pitr prints
// can be pasted into --at.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// atShape is the shape of every accepted time, after upper-casing and
// turning a space after the date into "T".
var atShape = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$`)

// acceptedAt lists the forms ParseAt accepts, for its error message.
const acceptedAt = `want RFC 3339 (2025-01-12T15:34:45Z, 2025-01-12T15:34:45+01:00), ` +
	`a local time (2025-01-12T15:34, 2025-01-12T15:34:45, 2025-01-12 15:34, 2025-01-12 15:34:45) or "latest"`

// ParseAt parses the TIME of `pitr restore --at`:
//
//   - "latest", in any case: latest is true and t is zero;
//   - RFC 3339 with "Z" or a numeric offset: 2025-01-12T15:34:45Z,
//     2025-01-12T15:34:45+01:00, with optional fractional seconds, and also
//     without seconds (2025-01-12T15:34Z);
//   - a time without a zone, read in loc: 2025-01-12T15:34,
//     2025-01-12T15:34:45, 2025-01-12 15:34, 2025-01-12 15:34:45 (and
//     fractional seconds).
//
// Minute precision means second 00. A space may stand for the "T", and "t"
// and "z" may be lower case. Callers pass time.Local, which honours TZ.
//
// A local time that a daylight-saving change makes ambiguous or skips is
// read with the UTC offset in force just before the change (as Python's
// fold=0): in Europe/Paris, 2025-10-26 02:30 (which happens twice) is the
// first one, 00:30Z; and 2025-03-30 02:30 (which never happens) is
// 01:30Z, the instant the clocks would have shown 02:30 without the change.
//
// Anything else is an error wrapping ErrBadTime that quotes the input and
// lists the accepted forms. The result is in UTC.
func ParseAt(s string, loc *time.Location) (t time.Time, latest bool, err error) {
	in := strings.TrimSpace(s)
	if strings.EqualFold(in, "latest") {
		return time.Time{}, true, nil
	}
	if loc == nil {
		loc = time.Local
	}
	norm := strings.ToUpper(in)
	if len(norm) > 10 && norm[10] == ' ' {
		norm = norm[:10] + "T" + norm[11:]
	}
	// time.Parse alone would also take one-digit hours and the like.
	if !atShape.MatchString(norm) {
		return time.Time{}, false, fmt.Errorf("parse time %q: %w: %s", clip(s), ErrBadTime, acceptedAt)
	}
	for _, layout := range []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04Z07:00"} {
		if v, err := time.Parse(layout, norm); err == nil {
			return v.UTC(), false, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if v, err := time.Parse(layout, norm); err == nil {
			return inLocation(v, loc).UTC(), false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("parse time %q: %w: %s", clip(s), ErrBadTime, acceptedAt)
}

// inLocation reads the wall clock of w (a time in UTC) in loc, resolving
// daylight-saving gaps and overlaps with the offset in force before the
// change.
func inLocation(w time.Time, loc *time.Location) time.Time {
	// Offsets around the wall time: a day either side brackets any change
	// near it (real offsets are within ±14 h).
	_, before := w.Add(-24 * time.Hour).In(loc).Zone()
	_, after := w.Add(24 * time.Hour).In(loc).Zone()
	var found []time.Time
	for _, off := range []int{before, after} {
		c := w.Add(-time.Duration(off) * time.Second)
		if sameWall(c.In(loc), w) && !containsTime(found, c) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0]
	case 2: // the wall time happens twice: the first
		if found[1].Before(found[0]) {
			return found[1]
		}
		return found[0]
	}
	// In a gap (or a zone with more than one change within a day): the
	// offset before.
	if c := w.Add(-time.Duration(before) * time.Second); before != after {
		return c
	}
	y, mo, d := w.Date()
	return time.Date(y, mo, d, w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
}

func sameWall(a, w time.Time) bool {
	ay, am, ad := a.Date()
	wy, wm, wd := w.Date()
	return ay == wy && am == wm && ad == wd && a.Hour() == w.Hour() &&
		a.Minute() == w.Minute() && a.Second() == w.Second() && a.Nanosecond() == w.Nanosecond()
}

func containsTime(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}
