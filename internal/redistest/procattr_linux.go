package redistest

import "syscall"

// sysProcAttr makes the kernel kill a server when the process that started
// it dies, so that a test or a harness killed midway leaves none behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
