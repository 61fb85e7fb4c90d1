package bench

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func section(body string) string { return historyBegin + "\n" + body + "\n" + historyEnd + "\n" }

// The two modes of --write share one file: --history replaces only its
// section, a plain run rewrites the rest and keeps the section.
func TestWriteSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// --history on a missing file creates it.
	if err := writeHistorySection(path, section("h1")); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), section("h1"); got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}
	// A plain run puts its report first and keeps the section.
	if err := writeMainReport(path, "# Main 1\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# Main 1\n\n"+section("h1"); got != want {
		t.Fatalf("main report:\n%q\nwant\n%q", got, want)
	}
	// --history replaces the section alone.
	if err := writeHistorySection(path, section("h2\nmore")); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# Main 1\n\n"+section("h2\nmore"); got != want {
		t.Fatalf("replaced section:\n%q\nwant\n%q", got, want)
	}
	// Another plain run replaces the rest.
	if err := writeMainReport(path, "# Main 2\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# Main 2\n\n"+section("h2\nmore"); got != want {
		t.Fatalf("second main report:\n%q\nwant\n%q", got, want)
	}

	// --history on a file without a section appends it after a blank line.
	if err := os.WriteFile(path, []byte("# Main\ntext"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeHistorySection(path, section("h")); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), "# Main\ntext\n\n"+section("h"); got != want {
		t.Fatalf("appended:\n%q\nwant\n%q", got, want)
	}
	// A plain run on a file without a section writes just the report.
	if err := os.WriteFile(path, []byte("# Old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMainReport(path, "# New\n"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "# New\n" {
		t.Fatalf("no section: %q", got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, url string
		want        func(*reqCounts) *int64
	}{
		{"GET", "/b?list-type=2&prefix=chunks%2F", func(c *reqCounts) *int64 { return &c.List }},
		{"GET", "/b/", func(c *reqCounts) *int64 { return &c.List }},
		{"GET", "/b?location=", func(c *reqCounts) *int64 { return &c.Setup }},
		{"HEAD", "/b", func(c *reqCounts) *int64 { return &c.Setup }},
		{"GET", "/b/chunks/ab", func(c *reqCounts) *int64 { return &c.Get }},
		{"HEAD", "/b/chunks/ab", func(c *reqCounts) *int64 { return &c.Head }},
		{"PUT", "/b/sessions/s/claim.json", func(c *reqCounts) *int64 { return &c.Put }},
		{"DELETE", "/b/chunks/ab", func(c *reqCounts) *int64 { return &c.Delete }},
		{"POST", "/b?delete=", func(c *reqCounts) *int64 { return &c.Delete }},
		{"PUT", "/b", func(c *reqCounts) *int64 { return &c.Other }},
	} {
		req, err := newRequest(tc.method, tc.url)
		if err != nil {
			t.Fatal(err)
		}
		var c reqCounts
		*classify(req)(&c)++
		var want reqCounts
		*tc.want(&want)++
		if c != want {
			t.Errorf("%s %s: counted %+v, want %+v", tc.method, tc.url, c, want)
		}
	}
}

func newRequest(method, url string) (*http.Request, error) {
	return http.NewRequest(method, "http://127.0.0.1:9000"+url, nil)
}
