package main

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		in           string
		utime, stime uint64
		err          bool
	}{
		{"1234 (caddy) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0", 250, 75, false},
		{"1234 (a b) c)) R 1 1 1 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0", 7, 8, false},
		{"1234 caddy S 1", 0, 0, true},
		{"1234 (caddy) S 1 2", 0, 0, true},
		{"1234 (caddy) S 1 1234 1234 0 -1 4194560 100 0 0 0 x 75 0", 0, 0, true},
	}
	for _, tt := range tests {
		u, s, err := parseStat([]byte(tt.in))
		if u != tt.utime || s != tt.stime || (err != nil) != tt.err {
			t.Errorf("parseStat(%q) = %d, %d, %v; want %d, %d, error %v", tt.in, u, s, err, tt.utime, tt.stime, tt.err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tcaddy\nVmPeak:\t  100 kB\nVmRSS:\t   57300 kB\nThreads:\t8\nCpus_allowed_list:\t0\n"
	got, err := parseStatus([]byte(in))
	if err != nil || got != (procStatus{rssKB: 57300, threads: 8, cpus: "0"}) {
		t.Errorf("parseStatus = %+v, %v", got, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nThreads:\t2\n")); err == nil {
		t.Error("parseStatus without VmRSS succeeded")
	}
	if _, err := parseStatus([]byte("VmRSS:\tmany kB\nThreads:\t2\n")); err == nil {
		t.Error("parseStatus with a bad VmRSS succeeded")
	}
}

func TestParseGoroutineTotal(t *testing.T) {
	if n, err := parseGoroutineTotal("goroutine profile: total 1234\n"); n != 1234 || err != nil {
		t.Errorf("parseGoroutineTotal = %d, %v; want 1234", n, err)
	}
	for _, bad := range []string{"goroutine 1 [running]:", "goroutine profile: total x", ""} {
		if _, err := parseGoroutineTotal(bad); err == nil {
			t.Errorf("parseGoroutineTotal(%q) succeeded", bad)
		}
	}
}

func TestParseSyscw(t *testing.T) {
	in := "rchar: 6976\nwchar: 12\nsyscr: 10\nsyscw: 4321\nread_bytes: 0\n"
	if n, err := parseSyscw([]byte(in)); n != 4321 || err != nil {
		t.Errorf("parseSyscw = %d, %v; want 4321", n, err)
	}
	for _, bad := range []string{"rchar: 1\n", "syscw: x\n", ""} {
		if _, err := parseSyscw([]byte(bad)); err == nil {
			t.Errorf("parseSyscw(%q) succeeded", bad)
		}
	}
}
