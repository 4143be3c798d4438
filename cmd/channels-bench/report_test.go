package main

import (
	"bytes"
	"math"
	"testing"
)

func TestReportOutput(t *testing.T) {
	r := &report{}
	r.add("scenario", "scenario", "fanout", "")
	r.add("deliveries_per_s", "deliveries/s", 123456.789, "")
	r.add("latency_p99_us", "latency p99", 12.34567, "µs")
	r.add("lost", "lost", int64(0), "")
	r.add("ratio", "ratio", math.NaN(), "")
	var j bytes.Buffer
	if err := r.writeJSON(&j); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"scenario":"fanout","deliveries_per_s":123456.789,"latency_p99_us":12.346,"lost":0,"ratio":null}` + "\n"
	if j.String() != wantJSON {
		t.Errorf("JSON:\n%s\nwant\n%s", j.String(), wantJSON)
	}
	var txt bytes.Buffer
	if err := r.writeText(&txt); err != nil {
		t.Fatal(err)
	}
	wantText := "scenario      fanout\n" +
		"deliveries/s  123457\n" +
		"latency p99   12.3 µs\n" +
		"lost          0\n" +
		"ratio         n/a\n"
	if txt.String() != wantText {
		t.Errorf("text:\n%s\nwant\n%s", txt.String(), wantText)
	}
}

func TestAddWrites(t *testing.T) {
	a := serverSample{OK: true, HaveIO: true, Syscw: 100}
	b := serverSample{OK: true, HaveIO: true, Syscw: 350, CPU: 1}
	r := &report{}
	r.addServer("", "", a, b, 1000, "delivery")
	var j bytes.Buffer
	if err := r.writeJSON(&j); err != nil {
		t.Fatal(err)
	}
	if want := `"server_write_syscalls":250,"frames_per_write":4}`; !bytes.HasSuffix(bytes.TrimSpace(j.Bytes()), []byte(want)) {
		t.Errorf("JSON %s, want it to end with %s", j.String(), want)
	}
	r = &report{}
	r.addServer("", "", a, serverSample{OK: true}, 1000, "delivery") // no /proc/<pid>/io at the end
	for _, f := range r.fields {
		if f.key == "frames_per_write" || f.key == "server_write_syscalls" {
			t.Errorf("%s reported without both readings", f.key)
		}
	}
}
