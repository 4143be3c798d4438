//go:build !linux

package pubsubtest

import "syscall"

// childAttr is nil where the parent's death cannot be signalled to the
// child: the cleanups stop the servers.
func childAttr() *syscall.SysProcAttr { return nil }
