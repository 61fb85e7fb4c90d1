package main

import (
	"runtime/debug"
	"testing"
)

// limitMemory sets the soft limit from the graph's size, unless the user
// set GOMEMLIMIT; tuneGC sets GOGC 40, unless the user set GOGC.
func TestMemoryTuning(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	t.Setenv("GOMEMLIMIT", "")
	limitMemory(100<<20, 1.5)
	if got, want := debug.SetMemoryLimit(-1), int64(150<<20+96<<20); got != want {
		t.Errorf("memory limit %d, want %d", got, want)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	limitMemory(1<<20, 1)
	if got := debug.SetMemoryLimit(-1); got != int64(150<<20+96<<20) {
		t.Errorf("GOMEMLIMIT set, yet the limit changed to %d", got)
	}

	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 40 {
		t.Errorf("GOGC %d, want 40", got)
	}
	t.Setenv("GOGC", "100")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set by the user, yet tuneGC made it %d", got)
	}
}
