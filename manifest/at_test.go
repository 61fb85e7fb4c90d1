package manifest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func loadLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestParseAt(t *testing.T) {
	paris := loadLoc(t, "Europe/Paris")
	ny := loadLoc(t, "America/New_York")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	for _, tc := range []struct {
		in   string
		loc  *time.Location
		want string // RFC 3339 in UTC; "latest" for latest
	}{
		{"latest", paris, "latest"},
		{"LATEST", paris, "latest"},
		{" Latest ", paris, "latest"},
		// RFC 3339: the zone in the input wins over loc.
		{"2025-01-12T15:34:45Z", paris, "2025-01-12T15:34:45Z"},
		{"2025-01-12T15:34:45+01:00", ny, "2025-01-12T14:34:45Z"},
		{"2025-01-12T15:34:45-05:00", paris, "2025-01-12T20:34:45Z"},
		{"2025-01-12T15:34:45.250Z", paris, "2025-01-12T15:34:45.25Z"},
		{"2025-01-12T15:34:45.123456789+00:00", paris, "2025-01-12T15:34:45.123456789Z"},
		{"2025-01-12t15:34:45z", paris, "2025-01-12T15:34:45Z"},
		{"2025-01-12 15:34:45Z", paris, "2025-01-12T15:34:45Z"},
		{"2025-01-12T15:34Z", paris, "2025-01-12T15:34:00Z"},
		{"2025-01-12T15:34+02:00", paris, "2025-01-12T13:34:00Z"},
		// Zone-less: read in loc; minute precision means second 00.
		{"2025-01-12T15:34", paris, "2025-01-12T14:34:00Z"},
		{"2025-01-12T15:34:45", paris, "2025-01-12T14:34:45Z"},
		{"2025-01-12 15:34", paris, "2025-01-12T14:34:00Z"},
		{"2025-01-12 15:34:45", paris, "2025-01-12T14:34:45Z"},
		{"2025-01-12T15:34:45.5", paris, "2025-01-12T14:34:45.5Z"},
		{"2025-07-12T15:34", paris, "2025-07-12T13:34:00Z"}, // summer time
		{"2025-01-12T15:34", ny, "2025-01-12T20:34:00Z"},
		{"2025-07-12T15:34", ny, "2025-07-12T19:34:00Z"},
		{"2025-01-12T15:34", time.UTC, "2025-01-12T15:34:00Z"},
		// DST: Paris springs forward 2025-03-30 02:00 -> 03:00 and falls
		// back 2025-10-26 03:00 -> 02:00.
		{"2025-03-30T01:59", paris, "2025-03-30T00:59:00Z"},
		{"2025-03-30T02:30", paris, "2025-03-30T01:30:00Z"}, // in the gap: offset before (+01:00)
		{"2025-03-30T03:00", paris, "2025-03-30T01:00:00Z"},
		{"2025-10-26T01:59", paris, "2025-10-25T23:59:00Z"},
		{"2025-10-26T02:30", paris, "2025-10-26T00:30:00Z"}, // happens twice: the first
		{"2025-10-26T03:00", paris, "2025-10-26T02:00:00Z"},
		// New York: 2025-03-09 02:00 -> 03:00, 2025-11-02 02:00 -> 01:00.
		{"2025-03-09T02:30", ny, "2025-03-09T07:30:00Z"},
		{"2025-11-02T01:30", ny, "2025-11-02T05:30:00Z"},
		{"2025-11-02T02:30", ny, "2025-11-02T07:30:00Z"},
	} {
		t.Run(tc.in+"/"+tc.loc.String(), func(t *testing.T) {
			got, latest, err := ParseAt(tc.in, tc.loc)
			if err != nil {
				t.Fatalf("ParseAt(%q): %v", tc.in, err)
			}
			if tc.want == "latest" {
				if !latest || !got.IsZero() {
					t.Fatalf("ParseAt(%q) = %v, %v; want latest", tc.in, got, latest)
				}
				return
			}
			if latest || !got.Equal(utc(tc.want)) || got.Location() != time.UTC {
				t.Fatalf("ParseAt(%q, %s) = %v (latest %v), want %s", tc.in, tc.loc, got, latest, tc.want)
			}
		})
	}
}

func TestParseAtBad(t *testing.T) {
	for _, in := range []string{
		"", "now", "yesterday", "late st", "2025", "2025-01-12",
		"2025-01-12T", "2025-01-12T15", "2025-01-12T15:3", "2025-1-12T15:34",
		"2025-01-32T15:34", "2025-02-29T10:00", "2025-01-12T24:00", "2025-01-12T15:60",
		"2025-01-12T15:34:45+25:00", "2025-01-12T15:34:45 +01:00", "2025-01-12T15:34:45CET",
		"2025-01-12  15:34", "12/01/2025 15:34", "2025-01-12T15:34:45Zjunk", "1736696085",
		"2025-01-12T5:34", "2025-01-12T15:34:45.", "2025-01-12T15:34:45.1234567890Z", "2025-01-12T15:34:45+0100",
		"٢٠٢٥-01-12T15:34",
	} {
		_, _, err := ParseAt(in, time.UTC)
		if !errors.Is(err, ErrBadTime) {
			t.Errorf("ParseAt(%q) = %v, want ErrBadTime", in, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", in)) ||
			!strings.Contains(msg, "2025-01-12T15:34:45Z") || !strings.Contains(msg, "2025-01-12 15:34") ||
			!strings.Contains(msg, `"latest"`) {
			t.Errorf("ParseAt(%q) error %q should quote the input and list the forms", in, msg)
		}
	}
}

// TestParseAtTZ runs a child test process with TZ set, because time.Local is
// fixed when a process starts: it shows that callers passing time.Local get
// TZ's zone.
func TestParseAtTZ(t *testing.T) {
	loadLoc(t, "America/New_York")
	if os.Getenv("PITR_PARSEAT_CHILD") == "1" {
		got, _, err := ParseAt("2025-01-12 15:34", time.Local)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("RESULT", got.Format(time.RFC3339))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestParseAtTZ$", "-test.v")
	cmd.Env = append(os.Environ(), "PITR_PARSEAT_CHILD=1", "TZ=America/New_York")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "RESULT 2025-01-12T20:34:00Z") {
		t.Fatalf("with TZ=America/New_York, 15:34 local should be 20:34Z; child said:\n%s", out)
	}
}

func FuzzParseAt(f *testing.F) {
	for _, s := range []string{"latest", "2025-01-12T15:34:45Z", "2025-01-12T15:34:45+01:00",
		"2025-01-12T15:34", "2025-01-12 15:34:45", "2025-10-26T02:30", "x"} {
		f.Add(s)
	}
	paris := loadLoc(f, "Europe/Paris")
	f.Fuzz(func(t *testing.T, s string) {
		got, latest, err := ParseAt(s, paris)
		if err != nil {
			if !errors.Is(err, ErrBadTime) {
				t.Fatalf("error does not wrap ErrBadTime: %v", err)
			}
			return
		}
		if latest {
			if !got.IsZero() || !strings.EqualFold(strings.TrimSpace(s), "latest") {
				t.Fatalf("ParseAt(%q) = latest", s)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseAt(%q) not in UTC", s)
		}
		if got.Year() < 1 || got.Year() > 9999 {
			return // RFC 3339 cannot write it
		}
		// The result is stable: its RFC 3339 form parses to itself.
		again, _, err := ParseAt(got.Format(time.RFC3339Nano), paris)
		if err != nil || !again.Equal(got) {
			t.Fatalf("ParseAt(%q) = %v; reparsed %v, %v", s, got, again, err)
		}
	})
}

// TestFormatTimeParsesBack checks that a time pitr prints is read back by
// ParseAt as the same instant in any zone.
func TestFormatTimeParsesBack(t *testing.T) {
	at := time.Date(2025, 1, 12, 15, 34, 45, 123456789, time.FixedZone("", 5*3600))
	got := FormatTime(at)
	if got != "2025-01-12T10:34:45.123Z" {
		t.Fatalf("FormatTime = %q, want 2025-01-12T10:34:45.123Z", got)
	}
	for _, loc := range []*time.Location{time.UTC, loadLoc(t, "Europe/Berlin"), loadLoc(t, "America/New_York")} {
		back, latest, err := ParseAt(got, loc)
		if err != nil || latest || !back.Equal(at.Truncate(time.Millisecond)) {
			t.Errorf("ParseAt(%q, %s) = %v, %v, %v; want %v", got, loc, back, latest, err, at.Truncate(time.Millisecond))
		}
	}
}
