package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// Linux fixes it at 100 on every architecture Go supports.
const clockTicks = 100

// serverSample is one reading of the server process.
type serverSample struct {
	At         time.Time
	CPU        float64 // utime+stime, seconds
	RSSKB      int64   // VmRSS
	Threads    int
	CPUs       string // Cpus_allowed_list
	Goroutines int    // -1 when unknown
	OK         bool   // /proc was read
	// Syscw is the process's count of write syscalls (write, writev,
	// pwrite…; one per call, whatever the number of buffers) from
	// /proc/<pid>/io; HaveIO is false when that file could not be read
	// (it needs the rights of ptrace).
	Syscw  int64
	HaveIO bool
}

// serverProbe reads the server's CPU, memory and goroutines. A zero pid
// and an empty debugURL make every sample empty.
type serverProbe struct {
	pid      int
	debugURL string
	client   *http.Client
}

// newServerProbe returns a probe for the process pid (0: none) and the
// pprof goroutine page debugURL (empty: none).
func newServerProbe(pid int, debugURL string) *serverProbe {
	return &serverProbe{pid: pid, debugURL: debugURL, client: &http.Client{Timeout: 5 * time.Second}}
}

// sample reads the server now. Failures leave the fields unknown (OK false,
// Goroutines -1); the first error is returned for the caller to report.
func (p *serverProbe) sample(ctx context.Context) (serverSample, error) {
	s := serverSample{At: time.Now(), Goroutines: -1}
	var errs []error
	if p.pid > 0 {
		if err := readProc(p.pid, &s); err != nil {
			errs = append(errs, err)
		} else {
			s.OK = true
		}
	}
	if p.debugURL != "" {
		n, err := p.goroutines(ctx)
		if err != nil {
			errs = append(errs, err)
		} else {
			s.Goroutines = n
		}
	}
	return s, errors.Join(errs...)
}

// readProc fills CPU, RSS, threads and CPUs from /proc/<pid>.
func readProc(pid int, s *serverSample) error {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return fmt.Errorf("read server stat: %w", err)
	}
	ut, st, err := parseStat(stat)
	if err != nil {
		return fmt.Errorf("parse server stat: %w", err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fmt.Errorf("read server status: %w", err)
	}
	st2, err := parseStatus(status)
	if err != nil {
		return fmt.Errorf("parse server status: %w", err)
	}
	s.CPU = float64(ut+st) / clockTicks
	s.RSSKB, s.Threads, s.CPUs = st2.rssKB, st2.threads, st2.cpus
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		s.Syscw, err = parseSyscw(io)
		s.HaveIO = err == nil
	}
	return nil
}

// parseSyscw returns the syscw line of a /proc/<pid>/io text: the write
// syscalls of every thread of the process, live or ended.
func parseSyscw(b []byte) (int64, error) {
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("syscw %q: %w", strings.TrimSpace(v), err)
			}
			return n, nil
		}
	}
	return 0, errors.New("no syscw line")
}

// parseStat returns utime and stime (fields 14 and 15, in clock ticks) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after its last ')'.
func parseStat(b []byte) (utime, stime uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command field")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%d fields after the command, want at least 13", len(f))
	}
	if utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// procStatus holds the fields read from /proc/<pid>/status.
type procStatus struct {
	rssKB   int64
	threads int
	cpus    string
}

// parseStatus reads VmRSS (kB), Threads and Cpus_allowed_list from a
// /proc/<pid>/status text. VmRSS and Threads are required.
func parseStatus(b []byte) (procStatus, error) {
	var s procStatus
	haveRSS, haveThreads := false, false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
			if err != nil {
				return s, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			s.rssKB, haveRSS = n, true
		case "Threads":
			n, err := strconv.Atoi(v)
			if err != nil {
				return s, fmt.Errorf("threads %q: %w", v, err)
			}
			s.threads, haveThreads = n, true
		case "Cpus_allowed_list":
			s.cpus = v
		}
	}
	if !haveRSS || !haveThreads {
		return s, errors.New("VmRSS or Threads missing")
	}
	return s, nil
}

// goroutines reads the total from a pprof goroutine page in the debug=1
// form, whose first line is "goroutine profile: total N".
func (p *serverProbe) goroutines(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.debugURL, nil)
	if err != nil {
		return 0, fmt.Errorf("goroutine page: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("goroutine page: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("goroutine page: status %d", resp.StatusCode)
	}
	head, err := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if err != nil && head == "" {
		return 0, fmt.Errorf("goroutine page: %w", err)
	}
	return parseGoroutineTotal(head)
}

// parseGoroutineTotal reads N from "goroutine profile: total N".
func parseGoroutineTotal(line string) (int, error) {
	const prefix = "goroutine profile: total "
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
	if !ok {
		return 0, fmt.Errorf("goroutine page: unexpected first line %q (want debug=1)", line)
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0, fmt.Errorf("goroutine total %q: %w", rest, err)
	}
	return n, nil
}
