// Package counting wraps a store.Store to count its requests per operation
// and the bytes moved, atomically, for benchmarks and tests that report or
// bound store traffic.
package counting

import (
	"context"
	"sync/atomic"

	"github.com/pitr-dev/pitr/store"
)

// Counts is a snapshot of a Store's counters. Puts counts Put and PutIf
// calls, Gets counts Get and GetWithInfo calls (whole objects), RangeGets
// GetRange calls (ranged GETs): one request each.
type Counts struct {
	Puts, Gets, RangeGets, Stats, Lists, Deletes int64
	// Listed is the number of entries List calls delivered; with S3 page
	// sizes a List costs about 1 + Listed/1000 requests.
	Listed int64
	// BytesPut and BytesGot are the object bytes written by successful
	// Puts and read by successful Gets and RangeGets.
	BytesPut, BytesGot int64
	// Errors counts calls that returned an error.
	Errors int64
}

// Requests is the number of calls of all operations.
func (c Counts) Requests() int64 {
	return c.Puts + c.Gets + c.RangeGets + c.Stats + c.Lists + c.Deletes
}

// Sub returns c - d, the traffic between two snapshots.
func (c Counts) Sub(d Counts) Counts {
	return Counts{
		Puts: c.Puts - d.Puts, Gets: c.Gets - d.Gets, RangeGets: c.RangeGets - d.RangeGets, Stats: c.Stats - d.Stats,
		Lists: c.Lists - d.Lists, Deletes: c.Deletes - d.Deletes, Listed: c.Listed - d.Listed,
		BytesPut: c.BytesPut - d.BytesPut, BytesGot: c.BytesGot - d.BytesGot, Errors: c.Errors - d.Errors,
	}
}

// Store counts the calls it forwards to an inner store. It is safe for
// concurrent use.
type Store struct {
	inner store.Store

	puts, gets, rangeGets, stats, lists, deletes atomic.Int64
	listed, bytesPut, bytesGot, errs             atomic.Int64
}

var _ store.Store = (*Store)(nil)

// New wraps inner.
func New(inner store.Store) *Store { return &Store{inner: inner} }

// Snapshot returns the counters. Each is read atomically; calls running
// meanwhile may be counted in some and not yet in others.
func (s *Store) Snapshot() Counts {
	return Counts{
		Puts: s.puts.Load(), Gets: s.gets.Load(), RangeGets: s.rangeGets.Load(), Stats: s.stats.Load(),
		Lists: s.lists.Load(), Deletes: s.deletes.Load(), Listed: s.listed.Load(),
		BytesPut: s.bytesPut.Load(), BytesGot: s.bytesGot.Load(), Errors: s.errs.Load(),
	}
}

// Reset zeroes the counters.
func (s *Store) Reset() {
	for _, c := range []*atomic.Int64{&s.puts, &s.gets, &s.rangeGets, &s.stats, &s.lists, &s.deletes,
		&s.listed, &s.bytesPut, &s.bytesGot, &s.errs} {
		c.Store(0)
	}
}

func (s *Store) count(err error) error {
	if err != nil {
		s.errs.Add(1)
	}
	return err
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	s.puts.Add(1)
	err := s.inner.Put(ctx, key, data)
	if err == nil {
		s.bytesPut.Add(int64(len(data)))
	}
	return s.count(err)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	b, err := s.inner.Get(ctx, key)
	s.bytesGot.Add(int64(len(b)))
	return b, s.count(err)
}

// GetRange implements store.Store; it counts as a RangeGet, not a Get.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	s.rangeGets.Add(1)
	b, err := s.inner.GetRange(ctx, key, offset, length)
	s.bytesGot.Add(int64(len(b)))
	return b, s.count(err)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	s.stats.Add(1)
	info, err := s.inner.Stat(ctx, key)
	return info, s.count(err)
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	s.lists.Add(1)
	err := s.inner.List(ctx, opts, func(o store.ObjectInfo) error {
		s.listed.Add(1)
		return fn(o)
	})
	return s.count(err)
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	s.deletes.Add(1)
	return s.count(s.inner.Delete(ctx, key))
}

// PutIf implements store.Store; it counts as a Put.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	s.puts.Add(1)
	tag, err := s.inner.PutIf(ctx, key, data, cond)
	if err == nil {
		s.bytesPut.Add(int64(len(data)))
	}
	return tag, s.count(err)
}

// GetWithInfo implements store.Store; it counts as a Get.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	s.gets.Add(1)
	b, info, err := s.inner.GetWithInfo(ctx, key)
	s.bytesGot.Add(int64(len(b)))
	return b, info, s.count(err)
}

// String names the inner store.
func (s *Store) String() string { return s.inner.String() }
