//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package datadir

// Lock is a no-op where flock is missing: one process per data dir is then
// up to the operator.
func Lock(dir string) (unlock func(), err error) { return func() {}, nil }
