//go:build !linux

package main

import "errors"

// raiseNoFile is a no-op outside Linux.
func raiseNoFile() (uint64, error) { return 0, nil }

// pinCPUs is only supported on Linux.
func pinCPUs(cpus []int) error { return errors.New("-cpu needs Linux") }

// selfCPU is unknown outside Linux.
func selfCPU() float64 { return 0 }
