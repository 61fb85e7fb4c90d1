//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package file

import (
	"context"
	"sync"
)

// locks serializes conditional writes per root directory within the
// process; without flock(2), other processes are not excluded.
var locks sync.Map // root -> *sync.Mutex

func (s *Store) lock(ctx context.Context) (unlock func(), err error) {
	m, _ := locks.LoadOrStore(s.root, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	if err := ctx.Err(); err != nil {
		mu.Unlock()
		return nil, err
	}
	return mu.Unlock, nil
}
