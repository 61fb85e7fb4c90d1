package e2e

import "syscall"

// sysProcAttr kills a child pitr when the test process dies without
// cleaning up (a panic, a timeout).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
