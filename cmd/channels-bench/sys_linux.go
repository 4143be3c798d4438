//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit.
func raiseNoFile() (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get open file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("raise open file limit: %w", err)
		}
	}
	return lim.Cur, nil
}

// pinCPUs restricts every thread of this process to cpus. sched_setaffinity
// acts on one thread, so each thread listed in /proc/self/task is set (twice,
// to catch a thread started during the first pass); threads created later
// inherit the mask. GOMAXPROCS is lowered to the number of CPUs.
func pinCPUs(cpus []int) error {
	var set unix.CPUSet
	set.Zero()
	for _, c := range cpus {
		set.Set(c)
	}
	for pass := 0; pass < 2; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("list threads: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d: %w", tid, err)
			}
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// selfCPU returns the CPU time (user+system, seconds) this process has used.
func selfCPU() float64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
