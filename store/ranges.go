package store

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ValidateRange reports, as an error wrapping ErrInvalidRange, a GetRange
// that no store can serve: a negative offset, a length below 1, or a range
// whose end, offset+length, overflows an int64. Every implementation checks
// ranges with it before making any request.
func ValidateRange(offset, length int64) error {
	switch {
	case offset < 0:
		return fmt.Errorf("%w: negative offset %d", ErrInvalidRange, offset)
	case length < 1:
		return fmt.Errorf("%w: length %d (at least 1 byte)", ErrInvalidRange, length)
	case offset > math.MaxInt64-length:
		return fmt.Errorf("%w: offset %d + length %d overflows", ErrInvalidRange, offset, length)
	}
	return nil
}

// RangeHeader is the HTTP Range header value of a GetRange:
// "bytes=<offset>-<offset+length-1>" (both ends inclusive).
func RangeHeader(offset, length int64) string {
	return fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
}

// ShortObject is the error, wrapping ErrInvalidRange, of a GetRange of
// [offset, offset+length) from an object of size bytes (size < 0: unknown).
func ShortObject(offset, length, size int64) error {
	if size < 0 {
		return fmt.Errorf("%w: bytes %d-%d asked, the object is shorter", ErrInvalidRange, offset, offset+length-1)
	}
	return fmt.Errorf("%w: bytes %d-%d asked, the object has %d bytes", ErrInvalidRange, offset, offset+length-1, size)
}

// TakeRange checks the answer to an HTTP Range GET of [offset,
// offset+length) and returns exactly the length bytes asked for, for the
// S3 and MinIO stores. body is the response body, read up to
// offset+length bytes; contentRange is its Content-Range header.
//
// A 206 answer (contentRange set) must start at offset and end at or
// before offset+length-1; ending before it means the object is shorter, an
// error wrapping ErrInvalidRange, never a short result. A body shorter
// than its Content-Range is a truncated transfer (io.ErrUnexpectedEOF). A
// server that ignores the Range header answers 200 with the whole object
// and no Content-Range; the range is then cut out of the body, and a body
// shorter than offset+length is ErrInvalidRange too.
func TakeRange(body []byte, contentRange string, offset, length int64) ([]byte, error) {
	n := int64(len(body))
	if contentRange == "" {
		if n < offset+length {
			return nil, ShortObject(offset, length, n)
		}
		return body[offset : offset+length], nil
	}
	first, last, size, err := ParseContentRange(contentRange)
	switch {
	case err != nil:
		return nil, err
	case first != offset || last > offset+length-1:
		return nil, fmt.Errorf("the server sent bytes %d-%d for bytes %d-%d", first, last, offset, offset+length-1)
	case n != last-first+1:
		return nil, fmt.Errorf("read %d bytes of bytes %d-%d: %w", n, first, last, io.ErrUnexpectedEOF)
	case n < length:
		return nil, ShortObject(offset, length, size)
	}
	return body, nil
}

// ParseContentRange parses an HTTP Content-Range header of a 206 answer,
// "bytes <first>-<last>/<size>", where size may be "*" (returned as -1).
func ParseContentRange(v string) (first, last, size int64, err error) {
	bad := func() (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("unexpected Content-Range %q", v)
	}
	spec, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return bad()
	}
	span, total, ok := strings.Cut(spec, "/")
	if !ok {
		return bad()
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return bad()
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	size = -1
	var err3 error
	if total != "*" {
		size, err3 = strconv.ParseInt(total, 10, 64)
	}
	if errors.Join(err1, err2, err3) != nil || first < 0 || last < first || (size >= 0 && last >= size) {
		return bad()
	}
	return first, last, size, nil
}
