package retention

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestAddFlags(t *testing.T) {
	for _, c := range []struct {
		name     string
		defaults Policy
		args     []string
		want     Policy
	}{
		{"no flags keep the default", Default(), nil, Default()},
		{"no flags, no default", Policy{}, nil, Policy{}},
		{"a flag replaces the default as a whole", Default(), []string{"--keep-last", "100"}, Policy{Last: 100}},
		{"every flag", Policy{}, []string{
			"--keep-last=1", "--keep-within=2d", "--keep-hourly=3", "--keep-daily=4", "--keep-weekly=5", "--keep-monthly=6",
			"--keep-within-hourly=7d", "--keep-within-daily=2w", "--keep-within-weekly=90m", "--keep-within-monthly=365d",
		}, Policy{Last: 1, Within: 2 * Day, Hourly: 3, Daily: 4, Weekly: 5, Monthly: 6,
			WithinHourly: 7 * Day, WithinDaily: 14 * Day, WithinWeekly: 90 * time.Minute, WithinMonthly: 365 * Day}},
		{"one zero turns the default off", Default(), []string{"--keep-within-daily", "0"}, Policy{}},
		{"a default rule given again stays alone", Default(), []string{"--keep-within", "24h", "--keep-daily", "7"}, Policy{Within: Day, Daily: 7}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			p := c.defaults
			AddFlags(fs, &p)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			if p != c.want {
				t.Fatalf("policy %v, want %v", p, c.want)
			}
		})
	}
}

func TestAddFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--keep-last", "-1"}, {"--keep-last", "x"}, {"--keep-daily", "1.5"},
		{"--keep-within", "7x"}, {"--keep-within", "-1h"}, {"--keep-within-daily", "1.5d"},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		p := Default()
		AddFlags(fs, &p)
		err := fs.Parse(args)
		if err == nil || !(errors.Is(err, ErrBadPolicy) || errors.Is(err, ErrBadDuration)) && !strings.Contains(err.Error(), "invalid value") {
			t.Errorf("%q: err = %v", args, err)
		}
		if p != Default() {
			t.Errorf("%q: a refused value changed the policy to %v", args, p)
		}
	}
}

func TestAddFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(&out)
	p := Default()
	AddFlags(fs, &p)
	fs.PrintDefaults()
	for _, want := range []string{"-keep-within DURATION", "(default 24h)", "-keep-within-daily DURATION", "(default 90d)", "-keep-last N"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "(default 0") {
		t.Errorf("help shows zero defaults:\n%s", out.String())
	}
}
