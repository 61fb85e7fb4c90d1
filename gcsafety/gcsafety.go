// Package gcsafety owns the gc grace: the one duration that lets `pitr gc`
// run while servers save, and every rule derived from it. Package gc's
// documentation (gc/doc.go, "Why a save in flight never loses a pack")
// proves that these rules, applied with one grace G on both sides, never
// let gc delete a pack a committed save references:
//
//   - rule (a), Grace.Cutoff and Expired: gc deletes an unreferenced
//     object only if its ModTime is strictly before T0 − G, T0 read before
//     the mark;
//   - rule (c), Grace.SaveDeadline: a save that does not commit within G/4
//     of its start fails, and is retried as a new save.
//
// The two sides must agree on G: a saver is configured with the shortest
// grace any gc on its store uses (replicate.Config.GCGrace, default
// DefaultGrace), and `pitr gc` refuses a grace shorter than servers assume
// (Grace.ShorterThanSavers) while a server is saving.
//
// The package imports only the standard library, so that gc and replicate,
// which must not import each other, both use it.
package gcsafety

import (
	"fmt"
	"time"
)

// Grace is the gc grace G: how old an unreferenced pack or chunk object
// must be before gc deletes it, and four times how long a save may take to
// commit. See the package comment and the proof in package gc.
type Grace time.Duration

// DefaultGrace is the grace `pitr gc` uses unless told otherwise, and the
// one servers' savers assume (replicate.Config.GCGrace).
const DefaultGrace = Grace(time.Hour)

// Duration returns g as a time.Duration.
func (g Grace) Duration() time.Duration { return time.Duration(g) }

// String formats g as a time.Duration does ("1h0m0s").
func (g Grace) String() string { return time.Duration(g).String() }

// Check returns an error for a negative grace, which no rule gives a
// meaning to. Zero is valid: gc then deletes every unreferenced object,
// which is safe only while no save is in flight.
func (g Grace) Check() error {
	if g < 0 {
		return fmt.Errorf("gc grace %s: must not be negative", g)
	}
	return nil
}

// OrDefault returns g, or DefaultGrace when g is zero or negative: what a
// saver's unset Config.GCGrace means.
func (g Grace) OrDefault() Grace {
	if g <= 0 {
		return DefaultGrace
	}
	return g
}

// SaveDeadline is how long a save may take from its start to its commit:
// a quarter of the grace (rule (c) of the proof in package gc). A save
// past it must fail and start again as a new save. The other three
// quarters separate the packs a save uploads from gc's cutoff and absorb
// clock skew between saver, gc and store.
func (g Grace) SaveDeadline() time.Duration { return time.Duration(g) / 4 }

// Cutoff returns the deletion cutoff of a gc run that read the time t0
// before its mark: t0 − g (rule (a)). Only objects Expired by it may go.
func (g Grace) Cutoff(t0 time.Time) time.Time { return t0.Add(-time.Duration(g)) }

// Expired reports whether an object with modTime (the store's clock) is old
// enough for gc to delete at cutoff: strictly before it.
func Expired(modTime, cutoff time.Time) bool { return modTime.Before(cutoff) }

// ShorterThanSavers reports whether a gc run with grace g may delete what a
// save in flight relies on: g is shorter than DefaultGrace, the grace
// servers' savers assume. Such a grace is for stores no server is saving
// to (`pitr gc` checks the writer claims before it uses one).
func (g Grace) ShorterThanSavers() bool { return g < DefaultGrace }
