// Package store defines the small object-store interface pitr saves through
// (plain and conditional writes, whole and ranged reads, listings,
// deletes), the sentinel errors every implementation translates its SDK
// errors into, and helpers shared by the implementations (store/file,
// store/minio, store/s3).
//
// Keys are slash-separated paths relative to the store's root (the bucket
// prefix of the store URL). Implementations never log or return credentials.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors. Implementations wrap them with %w, naming the operation,
// the key and the bucket, so callers test with errors.Is.
var (
	// ErrNotFound: the object (or, for ErrBucketNotFound, the bucket) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoStore: the store itself (a file store's directory, a bucket) does
	// not exist, and opening it was not allowed to create it.
	ErrNoStore = errors.New("store does not exist")
	// ErrBucketNotFound: the bucket is missing (and was not, or could not
	// be, created). It is a kind of ErrNoStore: errors.Is(err, ErrNoStore)
	// holds for every error wrapping it.
	ErrBucketNotFound error = &kindError{msg: "bucket not found", of: ErrNoStore}
	// ErrAccessDenied: the credentials are valid but not allowed to do this.
	ErrAccessDenied = errors.New("access denied")
	// ErrBadCredentials: the store rejected the credentials themselves.
	ErrBadCredentials = errors.New("bad credentials")
	// ErrPreconditionFailed: a conditional write lost (If-None-Match / If-Match).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalidCondition: a PutIf condition with neither or both of its
	// fields set.
	ErrInvalidCondition = errors.New("invalid write condition")
	// ErrInvalidKey: the key (or list option) is not one every store can
	// hold; see ValidateKey.
	ErrInvalidKey = errors.New("invalid key")
	// ErrInvalidRange: a GetRange with a negative offset or a length below
	// 1 (see ValidateRange), or of bytes beyond the end of the object.
	ErrInvalidRange = errors.New("invalid range")
	// ErrStop may be returned by a List callback to end the listing early
	// without error.
	ErrStop = errors.New("stop listing")
)

// kindError is a sentinel error that is also a kind of a broader one.
type kindError struct {
	msg string
	of  error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.of }

// ObjectInfo describes one stored object, or one common prefix when the
// listing used a delimiter (IsPrefix true, Key ends with the delimiter).
type ObjectInfo struct {
	Key      string
	Size     int64
	ModTime  time.Time
	ETag     string
	IsPrefix bool
}

// ListOptions selects what List returns.
type ListOptions struct {
	// Prefix restricts the listing to keys starting with it.
	Prefix string
	// StartAfter skips every key, and every common prefix, that sorts at or
	// before it (exclusive). A common prefix before StartAfter is skipped
	// even when keys below it sort after StartAfter, so every entry List
	// reports sorts after StartAfter and after the entries before it.
	StartAfter string
	// Delimiter, when "/", groups keys below the next "/" after Prefix into
	// one ObjectInfo with IsPrefix set (like S3's CommonPrefixes).
	Delimiter string
	// Limit is a hint for the page size when the caller expects to stop
	// early (0: the implementation's default). It never truncates a listing
	// by itself: the callback ends it with ErrStop.
	Limit int
}

// Store is an object store. Every method is safe for concurrent use.
type Store interface {
	// Put stores data under key, replacing any object there. Once Put
	// returns nil the object is durable and visible to Get, Stat and List.
	// Put is idempotent.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole object. A missing key is ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns length bytes of the object starting at byte offset
	// (an HTTP Range GET of bytes offset to offset+length-1): exactly
	// length bytes, or an error. offset >= 0 and length >= 1 are required
	// (and offset+length must fit an int64): otherwise the error wraps
	// ErrInvalidRange and no request is made (see ValidateRange). An
	// object shorter than offset+length is an error wrapping
	// ErrInvalidRange too, never a short result: callers ask only for
	// ranges they know exist, so a short object is corruption. A missing
	// key is ErrNotFound, as for Get.
	GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat returns the object's metadata. A missing key is ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for each object matching opts in ascending byte order of
	// keys. If fn returns ErrStop the listing ends and List returns nil; any
	// other error from fn ends it and is returned.
	List(ctx context.Context, opts ListOptions, fn func(ObjectInfo) error) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// PutIf stores data under key only if cond holds, atomically with
	// respect to every other PutIf of the key, and returns the new object's
	// ETag (as Stat, List and GetWithInfo report it). When cond does not
	// hold — IfNoneMatch and the key exists, IfMatch and the key is missing
	// or has another ETag — nothing is written and the error wraps
	// ErrPreconditionFailed. Of concurrent PutIf calls with the same
	// condition at most one succeeds. A cond with neither or both fields
	// set is an error wrapping ErrInvalidCondition.
	PutIf(ctx context.Context, key string, data []byte, cond Condition) (etag string, err error)
	// GetWithInfo returns the whole object together with its metadata, both
	// of the same version of the object (one request, not a Get then a
	// Stat), so the ETag can guard a following PutIf. A missing key is
	// ErrNotFound.
	GetWithInfo(ctx context.Context, key string) ([]byte, ObjectInfo, error)
	// String names the store for logs and errors (scheme, endpoint, bucket,
	// prefix), never credentials.
	String() string
}

// Condition is the precondition of a conditional write (PutIf): exactly one
// of its fields is set. Stores implement it with S3's If-None-Match: * and
// If-Match headers; the file store with an exclusive link and a lock.
type Condition struct {
	// IfNoneMatch: write only if the key does not exist (a create).
	IfNoneMatch bool
	// IfMatch: write only if the key exists with this ETag (without
	// quotes), as returned by PutIf, GetWithInfo, Stat or List.
	IfMatch string
}

// Validate reports, as an error wrapping ErrInvalidCondition, a condition
// with neither or both fields set.
func (c Condition) Validate() error {
	switch {
	case c.IfNoneMatch && c.IfMatch != "":
		return fmt.Errorf("%w: both If-None-Match and If-Match (%q) set", ErrInvalidCondition, c.IfMatch)
	case !c.IfNoneMatch && c.IfMatch == "":
		return fmt.Errorf("%w: neither If-None-Match nor If-Match set (use Put)", ErrInvalidCondition)
	}
	return nil
}

// String describes the condition for errors: "if-none-match *" or
// "if-match <etag>".
func (c Condition) String() string {
	if c.IfNoneMatch {
		return "if-none-match *"
	}
	return "if-match " + c.IfMatch
}

// IsPermanent reports whether err is one that retrying cannot fix: a missing
// object, bucket or store, denied access, rejected credentials, a lost precondition,
// an invalid key, write condition or range.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoStore) ||
		errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrBadCredentials) ||
		errors.Is(err, ErrPreconditionFailed) || errors.Is(err, ErrInvalidKey) ||
		errors.Is(err, ErrInvalidCondition) || errors.Is(err, ErrInvalidRange)
}

// MaxKeyLen is the longest key ValidateKey accepts, in bytes. S3 allows 1024
// bytes including the bucket prefix; a local file system allows 255 bytes
// per path segment.
const MaxKeyLen = 900

// ValidateKey reports, as an error wrapping ErrInvalidKey, why key cannot be
// stored the same way by every implementation: it must be non-empty, at most
// MaxKeyLen bytes, relative (no leading "/"), made of non-empty "/"-separated
// segments that are neither "." nor "..", valid UTF-8, and free of "\\" and
// control characters (NUL included).
// Every implementation checks keys with it, so a key that works on one store
// works on all of them.
func ValidateKey(key string) error {
	if err := validateKey(key); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidKey, key, err)
	}
	return nil
}

func validateKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty")
	case len(key) > MaxKeyLen:
		return fmt.Errorf("longer than %d bytes", MaxKeyLen)
	case strings.HasPrefix(key, "/"):
		return errors.New("absolute (starts with /)")
	case strings.ContainsRune(key, 0):
		return errors.New("contains a NUL byte")
	case strings.ContainsRune(key, '\\'):
		return errors.New("contains a backslash")
	case !utf8.ValidString(key):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(key, unicode.IsControl):
		return errors.New("contains a control character")
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return errors.New("has an empty path segment")
		case ".", "..":
			return fmt.Errorf("has a %q path segment", seg)
		}
	}
	return nil
}

// ValidateListOptions reports, as an error wrapping ErrInvalidKey, list
// options no implementation supports: a Delimiter other than "" or "/", a
// negative Limit, or a Prefix/StartAfter containing NUL or "\\".
func ValidateListOptions(opts ListOptions) error {
	switch {
	case opts.Delimiter != "" && opts.Delimiter != "/":
		return fmt.Errorf("%w: list delimiter %q (only \"\" and \"/\" are supported)", ErrInvalidKey, opts.Delimiter)
	case opts.Limit < 0:
		return fmt.Errorf("%w: negative list limit %d", ErrInvalidKey, opts.Limit)
	case strings.ContainsAny(opts.Prefix, "\x00\\"):
		return fmt.Errorf("%w: list prefix %q", ErrInvalidKey, opts.Prefix)
	case strings.ContainsAny(opts.StartAfter, "\x00\\"):
		return fmt.Errorf("%w: list start-after %q", ErrInvalidKey, opts.StartAfter)
	}
	return nil
}
