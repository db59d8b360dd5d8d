package ctlog

import "syscall"

// sysProcAttr has the kernel kill the log if the test binary dies
// without running its cleanups (go test -timeout, a signal), so that no
// log outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
