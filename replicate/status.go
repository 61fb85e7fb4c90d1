package replicate

import (
	"fmt"
	"time"
)

// Status reports the last save, the last failure and a save running now.
func (s *Saver) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{LastError: s.lastErr, LocalError: s.localErr}
	if !s.unsaved.IsZero() {
		u := s.unsaved
		st.UnsavedSince = &u
	}
	if !s.since.IsZero() {
		since := s.since
		st.SavingSince = &since
		if age := s.cfg.Clock.Since(since); age > s.cfg.SlowSave {
			st.Warning = fmt.Sprintf("a save has been running for %s (since %s): the store may be unreachable or very slow; nothing newer is saved meanwhile",
				age.Round(time.Second), since.UTC().Format(time.RFC3339))
		}
	}
	if s.last != nil {
		r := *s.last
		st.LastSave = &r
	}
	return st
}

// noteChange records that the session holds a change no committed save has
// (the first such change starts the clock of UnsavedSince).
func (s *Saver) noteChange() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved.IsZero() {
		s.unsaved = s.cfg.Clock.Now()
	}
}

// UnsavedSince returns when the oldest change not yet in a committed save
// was made; ok is false when every change is saved. Its age is the data an
// operator would lose with the host (the RPO).
func (s *Saver) UnsavedSince() (since time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsaved, !s.unsaved.IsZero()
}

// markSaved records that the graph as of generation gen, snapshotted at
// at, is in a committed save.
func (s *Saver) markSaved(gen uint64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.sess.Gen() == gen:
		s.unsaved = time.Time{}
	case !s.unsaved.IsZero() && s.unsaved.Before(at):
		s.unsaved = at // changes after the snapshot remain; none is older than it
	}
}
