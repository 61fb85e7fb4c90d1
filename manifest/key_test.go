package manifest

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	at := time.Date(2025, 1, 12, 16, 34, 45, 123_456_789, time.FixedZone("CET", 3600))
	id := NewID(at)
	if !regexp.MustCompile(`^20250112T153445\.123Z-[0-9a-f]{6}$`).MatchString(id) {
		t.Fatalf("NewID = %q", id)
	}
	got, err := IDTime(id)
	if err != nil || !got.Equal(at.Truncate(time.Millisecond)) || got.Location() != time.UTC {
		t.Fatalf("IDTime(%q) = %v, %v", id, got, err)
	}
	if NewID(at) == id && NewID(at) == id {
		t.Error("NewID is not random")
	}
}

func TestIDTimeBad(t *testing.T) {
	for _, id := range []string{
		"", "x", "20250112T153445.123Z-1a2b3",
		"20250112T153445.123Z-1a2b3g",
		"20250112T153445.123Z-1A2B3C",
		"20250112T153445.123Z_1a2b3c",
		"20251312T153445.123Z-1a2b3c",
		"20250112T253445.123Z-1a2b3c",
		"20250112T153445123Z--1a2b3c",
		"19690112T153445.123Z-1a2b3c",
		"2025-01-12T15:34:45Z-1a2b3c",
	} {
		if _, err := IDTime(id); !errors.Is(err, ErrBadID) {
			t.Errorf("IDTime(%q) = %v, want ErrBadID", id, err)
		}
	}
}

func TestKey(t *testing.T) {
	id := "20250112T153445.123Z-1a2b3c"
	key, err := Key("default", id)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Date(2025, 1, 12, 15, 34, 45, 123e6, time.UTC).UnixMilli()
	want := "sessions/default/saves/" + inv(ms) + "-" + id + ".json"
	if key != want || len(inv(ms)) != 15 {
		t.Fatalf("Key = %q, want %q", key, want)
	}
	s, gotID, err := ParseKey(key)
	if err != nil || s != "default" || gotID != id {
		t.Fatalf("ParseKey = %q, %q, %v", s, gotID, err)
	}
	if _, err := Key("a/b", id); !errors.Is(err, ErrBadSession) {
		t.Errorf("Key(bad session) = %v", err)
	}
	if _, err := Key("s", "nope"); !errors.Is(err, ErrBadID) {
		t.Errorf("Key(bad id) = %v", err)
	}
}

// TestKeyOrder: ascending keys are newest first, and the listing that
// starts after prefix+inv(t) begins at the newest save at or before t.
func TestKeyOrder(t *testing.T) {
	base := time.Date(2025, 1, 12, 15, 0, 0, 0, time.UTC)
	var keys []string
	var times []time.Time
	for _, d := range []time.Duration{0, time.Millisecond, time.Second, time.Second, time.Hour, 24 * time.Hour, 365 * 24 * time.Hour} {
		at := base.Add(d)
		k, err := Key("s", NewID(at))
		if err != nil {
			t.Fatal(err)
		}
		keys, times = append(keys, k), append(times, at)
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		_, a, _ := ParseKey(sorted[i-1])
		_, b, _ := ParseKey(sorted[i])
		ta, _ := IDTime(a)
		tb, _ := IDTime(b)
		if ta.Before(tb) {
			t.Fatalf("ascending keys not newest first: %s before %s", sorted[i-1], sorted[i])
		}
	}
	for _, at := range times {
		start := SavesPrefix("s") + inv(at.UnixMilli())
		i, _ := slices.BinarySearch(sorted, start)
		if i < len(sorted) && sorted[i] == start {
			i++
		}
		_, id, _ := ParseKey(sorted[i])
		if got, _ := IDTime(id); !got.Equal(at) {
			t.Errorf("start after inv(%v) lands on a save at %v", at, got)
		}
	}
}

func TestParseKeyBad(t *testing.T) {
	id := "20250112T153445.123Z-1a2b3c"
	good, _ := Key("s", id)
	for _, key := range []string{
		"",
		"chunks/abc",
		"sessions/s/lease.json",
		"sessions/s/saves/",
		strings.TrimSuffix(good, ".json"),
		strings.Replace(good, "/saves/", "/saves/x", 1),
		strings.Replace(good, "/saves/9", "/saves/8", 1),
		strings.Replace(good, id, "20250112T153445.124Z-1a2b3c", 1),
		"sessions/a b/saves/" + good[len("sessions/s/saves/"):],
		"sessions//saves/" + good[len("sessions/s/saves/"):],
	} {
		if _, _, err := ParseKey(key); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadKey", key, err)
		}
	}
}

func TestValidSessionName(t *testing.T) {
	for _, ok := range []string{"default", "a", "A-Z_a.z-09", strings.Repeat("x", 128), "..."} {
		if err := ValidSessionName(ok); err != nil {
			t.Errorf("ValidSessionName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 129), "a/b", "a b", "é", ".", "..", "a\x00"} {
		if err := ValidSessionName(bad); !errors.Is(err, ErrBadSession) {
			t.Errorf("ValidSessionName(%q) = %v, want ErrBadSession", bad, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	k, _ := Key("default", NewID(time.Date(2025, 1, 12, 15, 34, 0, 0, time.UTC)))
	f.Add(k)
	f.Add("sessions/x/saves/000000000000000-.json")
	f.Fuzz(func(t *testing.T, key string) {
		session, id, err := ParseKey(key)
		if err != nil {
			return
		}
		again, err := Key(session, id)
		if err != nil || again != key {
			t.Fatalf("ParseKey(%q) = %q, %q but Key gives %q, %v", key, session, id, again, err)
		}
	})
}
