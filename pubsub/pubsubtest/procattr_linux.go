package pubsubtest

import "syscall"

// childAttr makes a server the helpers start die with the test binary
// (even when a test panics and no cleanup runs).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
