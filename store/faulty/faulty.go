// Package faulty wraps a store.Store for tests: it counts calls per
// operation and fails the calls that match injected rules (every call, only
// some operations, only keys under a prefix, after the first n calls, for a
// number of times, before or after reaching the inner store).
package faulty

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pitr-dev/pitr/store"
)

// Op names a store operation.
type Op string

// The operations of store.Store.
const (
	Put    Op = "put"
	Get    Op = "get"
	Stat   Op = "stat"
	List   Op = "list"
	Delete Op = "delete"
	// PutIf is a conditional write; rules for Put do not match it.
	PutIf Op = "putif"
	// GetWithInfo is a read with metadata; rules for Get do not match it.
	GetWithInfo Op = "getwithinfo"
	// GetRange is a ranged read; rules for Get do not match it.
	GetRange Op = "getrange"
)

var ops = [...]Op{Put, Get, Stat, List, Delete, PutIf, GetWithInfo, GetRange}

// Rule says which calls fail and how.
type Rule struct {
	// Err is returned by the failing calls.
	Err error
	// Ops restricts the rule to these operations; none means all.
	Ops []Op
	// Prefix restricts the rule to keys starting with it. A List matches
	// when its own prefix and Prefix overlap (one starts with the other).
	Prefix string
	// Skip lets this many matching calls through before the rule fires.
	Skip int
	// Times is how often the rule fires before it retires; 0 is forever.
	Times int
	// After makes the call reach the inner store first and fail only then,
	// like a write that lands but whose answer is lost (List fails after
	// delivering every entry).
	After bool
}

type rule struct {
	Rule
	seen  int // matching calls so far
	fired int
}

func (r *rule) matches(op Op, key string, isList bool) bool {
	if len(r.Ops) > 0 {
		found := false
		for _, o := range r.Ops {
			found = found || o == op
		}
		if !found {
			return false
		}
	}
	if r.Prefix == "" {
		return true
	}
	if isList {
		return strings.HasPrefix(key, r.Prefix) || strings.HasPrefix(r.Prefix, key)
	}
	return strings.HasPrefix(key, r.Prefix)
}

// Store is a store.Store that forwards to an inner store, except for calls
// matching its rules. It is safe for concurrent use.
type Store struct {
	inner store.Store

	mu    sync.Mutex
	rules []*rule

	calls    [len(ops)]atomic.Int64
	failures [len(ops)]atomic.Int64
}

var _ store.Store = (*Store)(nil)

// New wraps inner. Without rules every call goes through.
func New(inner store.Store) *Store { return &Store{inner: inner} }

// Inject adds a rule and returns a function that removes it.
func (s *Store) Inject(r Rule) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &rule{Rule: r}
	s.rules = append(s.rules, p)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, q := range s.rules {
			if q == p {
				s.rules = append(s.rules[:i], s.rules[i+1:]...)
				return
			}
		}
	}
}

// Fail makes every call of the given operations (all if none) fail with err.
func (s *Store) Fail(err error, ops ...Op) { s.Inject(Rule{Err: err, Ops: ops}) }

// FailPrefix makes calls of the given operations (all if none) on keys
// starting with prefix fail with err.
func (s *Store) FailPrefix(err error, prefix string, ops ...Op) {
	s.Inject(Rule{Err: err, Ops: ops, Prefix: prefix})
}

// Heal removes every rule.
func (s *Store) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Calls returns how many calls of op were made, failed ones included.
func (s *Store) Calls(op Op) int64 { return s.calls[index(op)].Load() }

// Failures returns how many calls of op failed by a rule.
func (s *Store) Failures(op Op) int64 { return s.failures[index(op)].Load() }

// ResetCounts zeroes the call and failure counts.
func (s *Store) ResetCounts() {
	for i := range ops {
		s.calls[i].Store(0)
		s.failures[i].Store(0)
	}
}

func index(op Op) int {
	for i, o := range ops {
		if o == op {
			return i
		}
	}
	panic("faulty: unknown operation " + string(op))
}

// check counts the call and returns whether the first rule that fires for
// it fires after the inner call, and its error.
func (s *Store) check(op Op, key string) (after bool, err error) {
	s.calls[index(op)].Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if !r.matches(op, key, op == List) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || (r.Times > 0 && r.fired >= r.Times) {
			continue
		}
		r.fired++
		s.failures[index(op)].Add(1)
		return r.After, r.Err
	}
	return false, nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	after, err := s.check(Put, key)
	if err != nil && !after {
		return err
	}
	if ierr := s.inner.Put(ctx, key, data); ierr != nil {
		return ierr
	}
	return err
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	after, err := s.check(Get, key)
	if err != nil && !after {
		return nil, err
	}
	b, ierr := s.inner.Get(ctx, key)
	if ierr != nil {
		return nil, ierr
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// GetRange implements store.Store.
func (s *Store) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	after, err := s.check(GetRange, key)
	if err != nil && !after {
		return nil, err
	}
	b, ierr := s.inner.GetRange(ctx, key, offset, length)
	if ierr != nil {
		return nil, ierr
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, key string) (store.ObjectInfo, error) {
	after, err := s.check(Stat, key)
	if err != nil && !after {
		return store.ObjectInfo{}, err
	}
	info, ierr := s.inner.Stat(ctx, key)
	if ierr != nil {
		return store.ObjectInfo{}, ierr
	}
	if err != nil {
		return store.ObjectInfo{}, err
	}
	return info, nil
}

// List implements store.Store. Rules match on opts.Prefix.
func (s *Store) List(ctx context.Context, opts store.ListOptions, fn func(store.ObjectInfo) error) error {
	after, err := s.check(List, opts.Prefix)
	if err != nil && !after {
		return err
	}
	if ierr := s.inner.List(ctx, opts, fn); ierr != nil {
		return ierr
	}
	return err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	after, err := s.check(Delete, key)
	if err != nil && !after {
		return err
	}
	if ierr := s.inner.Delete(ctx, key); ierr != nil {
		return ierr
	}
	return err
}

// PutIf implements store.Store. A rule with After lets the write land and
// then fails the call, like a conditional write whose answer is lost.
func (s *Store) PutIf(ctx context.Context, key string, data []byte, cond store.Condition) (string, error) {
	after, err := s.check(PutIf, key)
	if err != nil && !after {
		return "", err
	}
	tag, ierr := s.inner.PutIf(ctx, key, data, cond)
	if ierr != nil {
		return "", ierr
	}
	if err != nil {
		return "", err
	}
	return tag, nil
}

// GetWithInfo implements store.Store.
func (s *Store) GetWithInfo(ctx context.Context, key string) ([]byte, store.ObjectInfo, error) {
	after, err := s.check(GetWithInfo, key)
	if err != nil && !after {
		return nil, store.ObjectInfo{}, err
	}
	b, info, ierr := s.inner.GetWithInfo(ctx, key)
	if ierr != nil {
		return nil, store.ObjectInfo{}, ierr
	}
	if err != nil {
		return nil, store.ObjectInfo{}, err
	}
	return b, info, nil
}

// String names the inner store.
func (s *Store) String() string { return "faulty(" + s.inner.String() + ")" }
