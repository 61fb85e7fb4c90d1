package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Off a terminal, progress is a line per interval plus one at the end;
// quiet silences it.
func TestProgressLines(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	var buf bytes.Buffer
	progressEvery = time.Hour
	report, finish := newProgress(&buf, "restoring", "bytes", false)
	for done := int64(0); done <= 4<<20; done += 1 << 20 {
		report(done, 4<<20)
	}
	finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "0 B of 4.0 MiB (0 %)") || !strings.Contains(lines[1], "4.0 MiB of 4.0 MiB (100 %)") {
		t.Fatalf("progress with an hour's interval:\n%s\nwant the first and the last line", buf.String())
	}
	buf.Reset()
	progressEvery = 0
	report, finish = newProgress(&buf, "checking chunks", "chunks", false)
	for done := int64(1); done <= 3; done++ {
		report(done, 3)
	}
	finish()
	if n := strings.Count(buf.String(), "\n"); n != 3 || !strings.Contains(buf.String(), "3 of 3 chunks") {
		t.Fatalf("progress every call:\n%s", buf.String())
	}
	buf.Reset()
	report, finish = newProgress(&buf, "restoring", "bytes", true)
	if report != nil {
		report(1, 2)
	}
	finish()
	if buf.Len() != 0 {
		t.Fatalf("quiet progress wrote %q", buf.String())
	}
}
