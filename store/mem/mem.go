// Package mem implements store.Store in memory, for fast unit tests. It is
// never a production store: nothing survives the process, and it is not
// registered in store/storeurl, so no store URL can name it.
//
// It keeps the semantics of the object stores (store/minio, store/s3), so
// code tested against it behaves the same on a bucket:
//
//   - Keys are checked with store.ValidateKey; "a" and "a/b" may both
//     exist, as in a bucket (unlike the file store).
//   - The ETag is S3's for a single-part upload: the hex MD5 of the
//     content. Writing the same bytes again gives the same ETag.
//   - ModTime is the store's clock (Options.Clock) at the write, so tests
//     can control it with clock.NewFake.
//   - Conditional writes (PutIf) are atomic with respect to every other
//     write of the store.
//   - List returns keys in byte order, in pages of Limit (default
//     store.DefaultPageSize) taken under the lock; the callback runs
//     without it, so it may use the store, and sees writes made meanwhile
//     after the current page, as a paged S3 listing would.
//
// Data is copied in and out: the store never keeps the caller's slice, and
// callers may modify what Get returns.
package mem

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pitr-dev/pitr/clock"
	"github.com/pitr-dev/pitr/store"
)

// Options configure a Store. The zero value is ready to use.
type Options struct {
	// Clock stamps the ModTime of every write (nil: the wall clock).
	Clock clock.Clock
	// Name is what String reports after "mem://" (default: a number
	// unique in the process), to tell stores apart in logs and errors.
	Name string
}

// Store is an in-memory store.Store. It is safe for concurrent use.
type Store struct {
	clock clock.Clock
	name  string

	mu      sync.RWMutex
	objects map[string]object
	keys    []string // the keys of objects, sorted
}

// object is one stored version; its data is never modified once stored.
type object struct {
	data []byte
	mod  time.Time
	etag string
}

var _ store.Store = (*Store)(nil)

var lastID atomic.Int64

// New returns an empty store.
func New(opts Options) *Store {
	name := opts.Name
	if name == "" {
		name = fmt.Sprint(lastID.Add(1))
	}
	return &Store{clock: clock.Or(opts.Clock), name: name, objects: map[string]object{}}
}

// String names the store: "mem://" and its name.
func (s *Store) String() string { return "mem://" + s.name }

// Len returns the number of objects stored.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.keys)
}

func (s *Store) errorf(op, key string, err error) error {
	return fmt.Errorf("%s %q in %s: %w", op, key, s, err)
}

// check validates key and then ctx, wrapping the error with op.
func (s *Store) check(ctx context.Context, op, key string) error {
	if err := store.ValidateKey(key); err != nil {
		return s.errorf(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return s.errorf(op, key, err)
	}
	return nil
}

func etag(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

// newObject copies data into a new version, stamped by set.
func newObject(data []byte) object {
	b := make([]byte, len(data))
	copy(b, data)
	return object{data: b, etag: etag(b)}
}

// set stores o under key, stamping its ModTime, and returns it. s.mu is
// held for writing, so later writes never get earlier times.
func (s *Store) set(key string, o object) object {
	if _, ok := s.objects[key]; !ok {
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Insert(s.keys, i, key)
	}
	o.mod = s.clock.Now()
	s.objects[key] = o
	return o
}

func (o object) info(key string) store.ObjectInfo {
	return store.ObjectInfo{Key: key, Size: int64(len(o.data)), ModTime: o.mod, ETag: o.etag}
}

// Put stores a copy of data under key.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := s.check(ctx, "put", key); err != nil {
		return err
	}
	o := newObject(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set(key, o)
	return nil
}

// PutIf stores a copy of data under key if cond holds.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	if err := store.ValidateKey(key); err != nil {
		return "", s.errorf("put", key, err)
	}
	op := "put (" + cond.String() + ")"
	if err := cond.Validate(); err != nil {
		return "", s.errorf(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", s.errorf(op, key, err)
	}
	o := newObject(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.objects[key]
	switch {
	case cond.IfNoneMatch && ok:
		return "", s.errorf(op, key, fmt.Errorf("%w: the key exists (ETag %s)", store.ErrPreconditionFailed, cur.etag))
	case !cond.IfNoneMatch && !ok:
		return "", s.errorf(op, key, fmt.Errorf("%w: the key does not exist", store.ErrPreconditionFailed))
	case !cond.IfNoneMatch && cur.etag != cond.IfMatch:
		return "", s.errorf(op, key, fmt.Errorf("%w: the key's ETag is %s", store.ErrPreconditionFailed, cur.etag))
	}
	return s.set(key, o).etag, nil
}

// lookup returns the object at key, or an error wrapping
// store.ErrNotFound.
func (s *Store) lookup(op, key string) (object, error) {
	s.mu.RLock()
	o, ok := s.objects[key]
	s.mu.RUnlock()
	if !ok {
		return object{}, s.errorf(op, key, store.ErrNotFound)
	}
	return o, nil
}

// Get returns a copy of the object at key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, _, err := s.get(ctx, "get", key)
	return b, err
}

// GetWithInfo returns a copy of the object at key and its metadata, of the
// same version.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	return s.get(ctx, "get", key)
}

func (s *Store) get(ctx context.Context, op, key string) ([]byte, store.ObjectInfo, error) {
	if err := s.check(ctx, op, key); err != nil {
		return nil, store.ObjectInfo{}, err
	}
	o, err := s.lookup(op, key)
	if err != nil {
		return nil, store.ObjectInfo{}, err
	}
	b := make([]byte, len(o.data))
	copy(b, o.data)
	return b, o.info(key), nil
}

// GetRange returns a copy of length bytes of the object at key from byte
// offset.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	const op = "get range"
	if err := store.ValidateKey(key); err != nil {
		return nil, s.errorf(op, key, err)
	}
	if err := store.ValidateRange(offset, length); err != nil {
		return nil, s.errorf(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, s.errorf(op, key, err)
	}
	o, err := s.lookup(op, key)
	if err != nil {
		return nil, err
	}
	size := int64(len(o.data))
	if size-offset < length {
		return nil, s.errorf(op, key, store.ShortObject(offset, length, size))
	}
	b := make([]byte, length)
	copy(b, o.data[offset:])
	return b, nil
}

// Stat returns the metadata of the object at key.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	if err := s.check(ctx, "stat", key); err != nil {
		return store.ObjectInfo{}, err
	}
	o, err := s.lookup("stat", key)
	if err != nil {
		return store.ObjectInfo{}, err
	}
	return o.info(key), nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, "delete", key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; !ok {
		return nil
	}
	delete(s.objects, key)
	i, _ := slices.BinarySearch(s.keys, key)
	s.keys = slices.Delete(s.keys, i, i+1)
	return nil
}

// List calls fn for the objects (and, with a Delimiter, common prefixes)
// matching opts in ascending byte order of keys, a page at a time (see the
// package comment).
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	if err := store.ValidateListOptions(opts); err != nil {
		return fmt.Errorf("list %q in %s: %w", opts.Prefix, s, err)
	}
	pageSize := opts.Limit
	if pageSize == 0 {
		pageSize = store.DefaultPageSize
	}
	cursor := opts.StartAfter
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %q in %s: %w", opts.Prefix, s, err)
		}
		page, next := s.page(opts, cursor, pageSize)
		for _, o := range page {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %q in %s: %w", opts.Prefix, s, err)
			}
			if err := fn(o); err != nil {
				if errors.Is(err, store.ErrStop) {
					return nil
				}
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		cursor = next
	}
}

// afterPrefix sorts after every key starting with p and before every
// other key after p: keys are valid UTF-8, so none holds a 0xff byte.
func afterPrefix(p string) string { return p + "\xff" }

// page returns up to n entries of the listing opts after cursor (a key, or
// afterPrefix of a common prefix), and the cursor to continue from.
func (s *Store) page(opts store.ListOptions, cursor string, n int) ([]store.ObjectInfo, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.ObjectInfo
	for len(out) < n {
		i, found := slices.BinarySearch(s.keys, max(cursor, opts.Prefix))
		if found && cursor >= opts.Prefix {
			i++ // the cursor itself was reported
		}
		if i == len(s.keys) || !strings.HasPrefix(s.keys[i], opts.Prefix) {
			break
		}
		key := s.keys[i]
		if opts.Delimiter != "" {
			if j := strings.Index(key[len(opts.Prefix):], opts.Delimiter); j >= 0 {
				p := key[:len(opts.Prefix)+j+len(opts.Delimiter)]
				cursor = afterPrefix(p)
				if p > opts.StartAfter {
					out = append(out, store.ObjectInfo{Key: p, IsPrefix: true})
				}
				continue
			}
		}
		cursor = key
		out = append(out, s.objects[key].info(key))
	}
	return out, cursor
}
