package store_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/pitr-dev/pitr/store"
)

func TestValidateRange(t *testing.T) {
	for _, r := range [][2]int64{{0, 1}, {5, 10}, {math.MaxInt64 - 1, 1}, {0, math.MaxInt64}} {
		if err := store.ValidateRange(r[0], r[1]); err != nil {
			t.Errorf("ValidateRange(%d, %d) = %v", r[0], r[1], err)
		}
	}
	for _, r := range [][2]int64{{-1, 1}, {0, 0}, {0, -5}, {math.MinInt64, 1}, {math.MaxInt64, 1}, {1, math.MaxInt64}} {
		err := store.ValidateRange(r[0], r[1])
		if !errors.Is(err, store.ErrInvalidRange) || !store.IsPermanent(err) {
			t.Errorf("ValidateRange(%d, %d) = %v, want a permanent ErrInvalidRange", r[0], r[1], err)
		}
	}
	if h := store.RangeHeader(10, 20); h != "bytes=10-29" {
		t.Errorf("RangeHeader(10, 20) = %q", h)
	}
}

func TestParseContentRange(t *testing.T) {
	for v, want := range map[string][3]int64{
		"bytes 0-99/100":  {0, 99, 100},
		"bytes 50-50/51":  {50, 50, 51},
		"bytes 10-19/*":   {10, 19, -1},
		"bytes 0-0/1":     {0, 0, 1},
		"bytes 7-9/10000": {7, 9, 10000},
	} {
		a, b, n, err := store.ParseContentRange(v)
		if err != nil || [3]int64{a, b, n} != want {
			t.Errorf("ParseContentRange(%q) = %d, %d, %d, %v; want %v", v, a, b, n, err, want)
		}
	}
	for _, v := range []string{"", "bytes */100", "bytes 5-4/10", "bytes 0-10/10", "bytes -1-3/10", "items 0-1/2",
		"bytes 0-1", "bytes=0-1/2", "bytes 0-x/2", "bytes 0-1/y"} {
		if _, _, _, err := store.ParseContentRange(v); err == nil {
			t.Errorf("ParseContentRange(%q) succeeded", v)
		}
	}
}

func TestTakeRange(t *testing.T) {
	obj := []byte("0123456789")
	for _, c := range []struct {
		name           string
		body           []byte
		contentRange   string
		offset, length int64
		want           string
		err            error // nil: no error; else errors.Is target (or any error for errAny)
	}{
		{"206 middle", obj[2:5], "bytes 2-4/10", 2, 3, "234", nil},
		{"206 to the end", obj[7:], "bytes 7-9/10", 7, 3, "789", nil},
		{"206 short object", obj[7:], "bytes 7-9/10", 7, 5, "", store.ErrInvalidRange},
		{"206 short, size unknown", obj[7:], "bytes 7-9/*", 7, 5, "", store.ErrInvalidRange},
		{"206 truncated body", obj[2:4], "bytes 2-4/10", 2, 3, "", io.ErrUnexpectedEOF},
		{"206 other start", obj[3:6], "bytes 3-5/10", 2, 3, "", errAny},
		{"206 longer than asked", obj[2:6], "bytes 2-5/10", 2, 3, "", errAny},
		{"206 bad header", obj[2:5], "bytes 2-4", 2, 3, "", errAny},
		{"200 whole object", obj, "", 2, 3, "234", nil},
		{"200 whole object, all of it", obj, "", 0, 10, "0123456789", nil},
		{"200 object read up to the end of the range", obj[:5], "", 2, 3, "234", nil},
		{"200 short object", obj, "", 8, 3, "", store.ErrInvalidRange},
		{"200 empty object", nil, "", 0, 1, "", store.ErrInvalidRange},
	} {
		got, err := store.TakeRange(c.body, c.contentRange, c.offset, c.length)
		switch {
		case c.err == nil && (err != nil || !bytes.Equal(got, []byte(c.want))):
			t.Errorf("%s: TakeRange = %q, %v; want %q", c.name, got, err, c.want)
		case c.err != nil && (err == nil || got != nil || (!errors.Is(c.err, errAny) && !errors.Is(err, c.err))):
			t.Errorf("%s: TakeRange = %q, %v; want no bytes and %v", c.name, got, err, c.err)
		case !errors.Is(c.err, store.ErrInvalidRange) && errors.Is(err, store.ErrInvalidRange):
			t.Errorf("%s: TakeRange error %v is ErrInvalidRange: a broken answer is no short object", c.name, err)
		}
	}
}

var errAny = errors.New("any error")
