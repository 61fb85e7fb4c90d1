package retention

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// fuzzSaves turns data into saves: each pair of bytes steps back from a fixed
// newest time by b0 units of a size b1 picks (0 to ms … days, so equal times
// and bucket edges happen), with ids from a small alphabet (so ids repeat).
func fuzzSaves(data []byte) []Save {
	units := []time.Duration{0, time.Millisecond, time.Second, time.Minute, 7 * time.Minute, time.Hour, 5 * time.Hour, Day, 6 * Day}
	at := time.Date(2024, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	var out []Save
	for i := 0; i+1 < len(data) && len(out) < 400; i += 2 {
		at = at.Add(-time.Duration(data[i]) * units[int(data[i+1])%len(units)])
		out = append(out, Save{ID: fmt.Sprintf("s%02d", int(data[i+1])/len(units)%29), Time: at})
	}
	return out
}

func FuzzApply(f *testing.F) {
	f.Add([]byte{1, 3, 1, 3, 0, 0, 60, 2, 200, 7, 3, 8}, uint8(2), uint16(30), uint8(3), uint8(2), uint8(1), uint8(1), uint16(48), uint16(0), uint8(0), int64(1))
	f.Add([]byte{0, 0, 0, 0, 1, 1}, uint8(0), uint16(0), uint8(0), uint8(0), uint8(0), uint8(0), uint16(0), uint16(0), uint8(1), int64(2))
	f.Add([]byte{24, 5, 24, 5, 1, 7, 1, 8}, uint8(1), uint16(0), uint8(0), uint8(5), uint8(3), uint8(2), uint16(0), uint16(500), uint8(2), int64(3))
	locs := []*time.Location{time.UTC, mustLoc(f, "America/New_York"), mustLoc(f, "Australia/Lord_Howe"), mustLoc(f, "Asia/Kolkata")}
	f.Fuzz(func(t *testing.T, data []byte, last uint8, withinMin uint16, hourly, daily, weekly, monthly uint8,
		withinHourlyH, withinDailyH uint16, locIdx uint8, seed int64) {
		in := fuzzSaves(data)
		p := Policy{
			Last: int(last % 16), Within: time.Duration(withinMin) * time.Minute,
			Hourly: int(hourly % 50), Daily: int(daily % 50), Weekly: int(weekly % 20), Monthly: int(monthly % 20),
			WithinHourly: time.Duration(withinHourlyH) * time.Hour, WithinDaily: time.Duration(withinDailyH) * time.Hour,
		}
		loc := locs[int(locIdx)%len(locs)]
		got := Apply(in, p, loc)
		checkShape(t, in, got)

		// Removes none: the decisions are the input saves, oldest first.
		want := slices.Clone(in)
		slices.SortFunc(want, compareSaves)
		for i := range got {
			if got[i].Save != want[i] {
				t.Fatalf("decision %d is for %v, want %v", i, got[i].Save, want[i])
			}
		}
		// The input order does not matter.
		shuffled := slices.Clone(in)
		r := rand.New(rand.NewPCG(uint64(seed), 0))
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if again := Apply(shuffled, p, loc); !reflect.DeepEqual(again, got) {
			t.Fatalf("shuffled input changed the result")
		}
		if len(got) == 0 {
			return
		}
		// Rules keep what they promise.
		newest := got[len(got)-1].Time
		for i, d := range got {
			fromNewest := len(got) - 1 - i
			if fromNewest < p.Last && !d.Keep {
				t.Fatalf("save %d from the newest dropped under --keep-last %d", fromNewest, p.Last)
			}
			if p.Within > 0 && d.Time.After(newest.Add(-p.Within)) && !d.Keep {
				t.Fatalf("save %s within %v of the newest dropped", d.ID, p.Within)
			}
		}
		// Every bucket rule keeps at most one save per bucket and at most N buckets.
		perRule := map[string]int{}
		for _, d := range got {
			for _, reason := range d.Reasons {
				perRule[reason]++
				if perRule[reason] > 1 && reason != "last "+fmt.Sprint(p.Last) && reason != "within "+FormatDuration(p.Within) {
					t.Fatalf("reason %q given twice", reason)
				}
			}
		}
		// More rules never keep less (the union is monotonic).
		more := p
		more.Last++
		more.Weekly++
		keptMore := map[Save]bool{}
		for _, d := range Apply(in, more, loc) {
			keptMore[d.Save] = keptMore[d.Save] || d.Keep
		}
		for _, d := range got {
			if d.Keep && !keptMore[d.Save] {
				t.Fatalf("save %s kept by %v but not by %v", d.ID, p, more)
			}
		}
	})
}
