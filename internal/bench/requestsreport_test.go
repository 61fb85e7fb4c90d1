package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pitr-dev/pitr/gc"
)

func TestParseLists(t *testing.T) {
	if got, err := parseInts("2000, 20000"); err != nil || !slices.Equal(got, []int{2000, 20000}) {
		t.Errorf("parseInts: %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "2000,", "x"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q): no error", bad)
		}
	}
	if got, err := parseDurations("0ms,20ms"); err != nil || !slices.Equal(got, []time.Duration{0, 20 * time.Millisecond}) {
		t.Errorf("parseDurations: %v, %v", got, err)
	}
	for _, bad := range []string{"", "20", "-1ms", "20ms,0ms", "5ms,5ms"} {
		if _, err := parseDurations(bad); err == nil {
			t.Errorf("parseDurations(%q): no error", bad)
		}
	}
	o := options{nodeList: intList{2000}, latencies: []time.Duration{0, 20 * time.Millisecond}, saves: 1000, changes: 5, seed: 1}
	if got := requestsCommandLine(o); got != "go run ./cmd/pitr-bench --requests" {
		t.Errorf("default command line: %q", got)
	}
	o.nodeList, o.latencies, o.saves, o.write = intList{500, 2000}, []time.Duration{50 * time.Millisecond}, 60, "B.md"
	if got, want := requestsCommandLine(o), "go run ./cmd/pitr-bench --requests --nodes 500,2000 --latency 50ms --saves 60 --write B.md"; got != want {
		t.Errorf("command line: %q, want %q", got, want)
	}
}

func TestRequestsRows(t *testing.T) {
	runs := []reqMeasure{
		{c: reqCounts{Head: 10, Put: 12, Setup: 1, Claim: 2, BytesPut: 40_000}, wall: 30 * time.Millisecond},
		{c: reqCounts{Head: 11, Put: 14, Other: 1, Claim: 2, BytesPut: 81_900}, wall: 50 * time.Millisecond},
	}
	row := &reqRow{op: opSmall, latency: 20 * time.Millisecond, runs: runs}
	want := []string{
		"| small save (1 % of nodes), mean of 2 | 20 ms | 0 | 0 | 0 | 10.5 | 13 | 0 | 1 | 24.5 | 2 | 61.0 kB | 0 B | 40.0 ms |",
		"| small save (1 % of nodes), worst of 2 | 20 ms | 0 | 0 | 0 | 11 | 14 | 0 | 1 | 26 | 2 | 81.9 kB | 0 B | 50.0 ms |",
	}
	if got := row.lines(); !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	one := &reqRow{op: opRestoreOlder, note: "save #3 of 7", runs: []reqMeasure{
		{c: reqCounts{List: 1, Get: 2, RangedGet: 1500, Setup: 2, BytesGot: 13_700_000}, wall: 4200 * time.Millisecond}}}
	if got, want := one.lines(), []string{"| restore older (save #3 of 7) | 0 ms | 1 | 2 | 1,500 | 0 | 0 | 0 | 2 | 1,505 | 0 | 0 B | 13.7 MB | 4.20 s |"}; !slices.Equal(got, want) {
		t.Errorf("lines:\n%s\nwant\n%s", got, want)
	}
	if got := roundTrips(200*time.Millisecond, 2200*time.Millisecond, 0, 20*time.Millisecond); got != 100 {
		t.Errorf("roundTrips = %v, want 100", got)
	}
	if got := fmt.Sprintf("%.1f", roundTrips(700*time.Microsecond, 690*time.Microsecond, 0, 20*time.Millisecond)); got != "0.0" {
		t.Errorf("roundTrips of nothing = %s, want 0.0", got)
	}
	s := storedStats{saves: 1000, chunkObjs: 1234, chunkBytes: 56_700_000, sessionObjs: 1001, sessionBytes: 3_000_000,
		packsKept: 50_000_000, distinct: 20_000_000, gcWall: 1500 * time.Millisecond, afterGC: 24_000_000,
		gc: gc.Report{Repacked: 12, RepackCopied: 3_000_000}}
	if got, want := storedLine(s), "| 1,000 saves | 1,234 | 56.7 MB | 1,001 | 3.0 MB | 0 | 59.7 MB | 50.0 MB | 20.0 MB | 2.50× | 12 packs, 3.0 MB copied, 1.5 s | 24.0 MB | **1.20×** |"; got != want {
		t.Errorf("storedLine = %q, want %q", got, want)
	}
}

func TestRequestsOpsOrder(t *testing.T) {
	pt := &requestsPoint{latencies: []time.Duration{0, time.Millisecond}}
	for _, op := range []string{opFull, opSmall, opRestoreNewest, opRestoreOlder, opRawPut, opRawGet, opRestoreNewest + ", 50 saves"} {
		for _, l := range pt.latencies {
			pt.add(op, "", l, reqMeasure{})
		}
	}
	want := []string{opFull, opRawPut, opSmall, opRestoreNewest, opRawGet, opRestoreOlder, opRestoreNewest + ", 50 saves"}
	if got := pt.ops(); !slices.Equal(got, want) {
		t.Errorf("ops = %q, want %q", got, want)
	}
}

// The requests section is a section like the others: its --write
// replaces it alone and a plain run keeps it.
func TestRequestsSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	sec := func(body string) string { return requestsBegin + "\n" + body + "\n" + requestsEnd + "\n" }
	if err := writeMainReport(path, "# Main\n"); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "requests", sec("r1")); err != nil {
		t.Fatal(err)
	}
	if err := writeSection(path, "requests", sec("r2")); err != nil {
		t.Fatal(err)
	}
	if err := writeMainReport(path, "# Main 2\n"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "# Main 2\n\n"+sec("r2"); got != want {
		t.Errorf("file:\n%q\nwant\n%q", got, want)
	}
}

// The proxy tells ranged GETs from whole ones, counts payload bytes, and
// sleeps its latency before each request.
func TestProxyRangedAndLatency(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "0123456789")
		}
	}))
	defer backend.Close()
	p, err := startProxy(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	do := func(method, path, rng, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+p.Addr+path, strings.NewReader(body))
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do("GET", "/b/chunks/p/1", "", "")
	do("GET", "/b/chunks/p/1", "bytes=0-4", "")
	do("PUT", "/b/chunks/p/2", "", "abcdef")
	do("GET", "/b/sessions/s/claim.json", "", "")
	p.SetLatency(30 * time.Millisecond)
	start := time.Now()
	do("HEAD", "/b/chunks/p/1", "", "")
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("request with a 30 ms latency took %v", d)
	}
	p.Settle()
	got := p.Counts()
	want := reqCounts{Get: 2, RangedGet: 1, Put: 1, Head: 1, Claim: 1, BytesIn: 30, BytesPut: 6, BytesGot: 30}
	if got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
}
