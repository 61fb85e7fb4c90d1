package miniotest

import "syscall"

// sysProcAttr kills the server when the test process dies without cleaning
// up (a panic, a timeout), so no MinIO outlives its test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
