package retention

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// AddFlags registers the retention flags on fs, writing into p: --keep-last,
// --keep-within, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly
// (counts) and --keep-within-hourly, -daily, -weekly, -monthly (durations,
// read by ParseDuration). p's current value is the default shown in -h.
//
// The flags replace the default as a whole: the first retention flag set
// (on the command line, or through flag.Value.Set as cmd/pitr does for
// PITR_* variables) first resets *p to the zero Policy. So with
// p = Default(), `--keep-last 100` means exactly "keep the last 100", not
// the default plus the last 100, and any single `--keep-… 0` turns retention
// off (p.IsZero() then holds).
func AddFlags(fs *flag.FlagSet, p *Policy) {
	g := &flagGroup{p: p}
	for _, f := range p.fields() {
		if f.isCount {
			fs.Var(&countValue{g: g, v: f.nPtr}, f.flag, f.usage)
		} else {
			fs.Var(&durationValue{g: g, v: f.dPtr}, f.flag, f.usage)
		}
	}
}

// flagGroup is shared by one AddFlags call's flags.
type flagGroup struct {
	p       *Policy
	touched bool
}

// touch resets the policy before the first flag is set.
func (g *flagGroup) touch() {
	if !g.touched {
		g.touched = true
		*g.p = Policy{}
	}
}

// countValue is a flag.Value for a count rule. The zero value (used by the
// flag package to detect defaults) prints "0".
type countValue struct {
	g *flagGroup
	v *int
}

func (c *countValue) String() string {
	if c == nil || c.v == nil {
		return "0"
	}
	return strconv.Itoa(*c.v)
}

func (c *countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%w: want a whole number", ErrBadPolicy)
	}
	if n < 0 {
		return fmt.Errorf("%w: %d is negative", ErrBadPolicy, n)
	}
	c.g.touch()
	*c.v = n
	return nil
}

// durationValue is a flag.Value for a duration rule, read by ParseDuration.
type durationValue struct {
	g *flagGroup
	v *time.Duration
}

func (d *durationValue) String() string {
	if d == nil || d.v == nil {
		return FormatDuration(0)
	}
	return FormatDuration(*d.v)
}

func (d *durationValue) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	d.g.touch()
	*d.v = v
	return nil
}
