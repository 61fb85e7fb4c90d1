package retention

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a retention duration: a Go duration ("90m", "24h",
// "1h30m", "0") extended with whole days "d" (24h) and weeks "w" (7d), in any
// combination ("7d", "2w", "1w3d12h"). Negative durations are refused.
// Errors wrap ErrBadDuration.
func ParseDuration(s string) (time.Duration, error) {
	bad := func(why string) error {
		return fmt.Errorf("duration %q: %w: %s (want e.g. 90m, 24h, 7d, 2w)", clip(s), ErrBadDuration, why)
	}
	if s == "" {
		return 0, bad("empty")
	}
	if s[0] == '-' {
		return 0, bad("negative")
	}
	var (
		total  time.Duration
		goPart strings.Builder
	)
	for rest := s; rest != ""; {
		i := strings.IndexFunc(rest, func(r rune) bool { return !isNumRune(r) })
		if i < 0 {
			i = len(rest)
		}
		if i == 0 {
			return 0, bad("a number must come before each unit")
		}
		num := rest[:i]
		rest = rest[i:]
		j := strings.IndexFunc(rest, isNumRune)
		if j < 0 {
			j = len(rest)
		}
		unit := rest[:j]
		rest = rest[j:]
		var per time.Duration
		switch unit {
		case "d":
			per = Day
		case "w":
			per = 7 * Day
		default:
			goPart.WriteString(num + unit)
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, bad("days and weeks must be whole numbers")
		}
		if n > math.MaxInt64/int64(per) || total > math.MaxInt64-time.Duration(n)*per {
			return 0, bad("too long")
		}
		total += time.Duration(n) * per
	}
	if goPart.Len() > 0 {
		d, err := time.ParseDuration(goPart.String())
		if err != nil {
			return 0, bad(strings.TrimPrefix(err.Error(), "time: "))
		}
		if d < 0 || total > math.MaxInt64-d {
			return 0, bad("too long")
		}
		total += d
	}
	return total, nil
}

func isNumRune(r rune) bool { return r >= '0' && r <= '9' || r == '.' }

// FormatDuration formats d the way ParseDuration reads it: in days from two
// days on, else like time.Duration without zero minutes and seconds:
// "0s", "90s", "1h30m", "24h", "36h", "2d", "7d", "2d12h".
func FormatDuration(d time.Duration) string {
	if d < 2*Day {
		return trimZeros(d.String())
	}
	days, rest := d/Day, d%Day
	out := strconv.FormatInt(int64(days), 10) + "d"
	if rest == 0 {
		return out
	}
	return out + trimZeros(rest.String())
}

// trimZeros drops the zero minutes and seconds Duration.String writes:
// "2h0m0s" → "2h", "1h30m0s" → "1h30m".
func trimZeros(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
