package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressEvery is how often progress is logged when not on a terminal.
var progressEvery = 5 * time.Second

// newProgress reports the progress of long work (restore, verify) on w: a
// bar on a terminal, otherwise one line every progressEvery and one at the
// end, so that a pipe or a log shows it too; nothing when quiet. unit is
// "bytes" or a noun counted ("chunks"). finish ends the bar.
func newProgress(w io.Writer, what, unit string, quiet bool) (report func(done, total int64), finish func()) {
	if quiet {
		return nil, func() {}
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w),
						progressbar.OptionShowBytes(unit == "bytes"), progressbar.OptionSetDescription(what),
						progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
				}
				_ = bar.Set64(done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	var (
		mu       sync.Mutex
		last     time.Time
		lastDone int64 = -1
		lastTot  int64
	)
	line := func(done, total int64) {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		if unit == "bytes" {
			fmt.Fprintf(w, "pitr: %s: %s of %s (%.0f %%)\n", what, humanBytes(done), humanBytes(total), pct)
		} else {
			fmt.Fprintf(w, "pitr: %s: %d of %d %s (%.0f %%)\n", what, done, total, unit, pct)
		}
		lastDone = done
	}
	return func(done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			lastTot = total
			if now := wall.Now(); now.Sub(last) >= progressEvery {
				last = now
				line(done, total)
			}
		}, func() {
			mu.Lock()
			defer mu.Unlock()
			if lastDone >= 0 && lastDone != lastTot {
				line(lastTot, lastTot)
			}
		}
}
