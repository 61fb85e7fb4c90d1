package clock

import (
	"testing"
	"time"
)

func TestFakeFiresTimersWhenAdvanced(t *testing.T) {
	start := time.Date(2025, 1, 12, 15, 34, 0, 0, time.UTC)
	f := NewFake(start)
	ch := f.After(time.Minute)
	f.Advance(59 * time.Second)
	select {
	case <-ch:
		t.Fatal("timer fired before its minute")
	default:
	}
	f.Advance(time.Second)
	if got := <-ch; !got.Equal(start.Add(time.Minute)) {
		t.Errorf("timer fired at %s, want %s", got, start.Add(time.Minute))
	}
	if !f.Now().Equal(start.Add(time.Minute)) {
		t.Errorf("Now = %s after advancing a minute", f.Now())
	}
}

func TestOrDefaultsToTheWallClock(t *testing.T) {
	f := NewFake(time.Unix(42, 0))
	if Or(f) != Clock(f) {
		t.Error("Or replaced a clock it was given")
	}
	if d := time.Until(Or(nil).Now()); d > time.Second || d < -time.Second {
		t.Errorf("Or(nil) is %s away from the wall clock", d)
	}
}
