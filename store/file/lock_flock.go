//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lock takes the store's exclusive lock for a conditional write: flock(2)
// on the root directory, through a descriptor of its own, so it excludes
// other goroutines, other Store values and other processes alike. The lock
// goes with the descriptor, also when the process dies.
func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	d, err := os.Open(s.root)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", s.root, err)
	}
	// The wait cannot be cancelled, but the lock is only ever held for
	// the check and the write of one small object.
	for {
		err = syscall.Flock(int(d.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("lock %s: %w", s.root, err)
	}
	return func() { _ = d.Close() }, nil // closing the descriptor unlocks
}
