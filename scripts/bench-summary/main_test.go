package main

import (
	"strings"
	"testing"
)

func TestSummarizeMedians(t *testing.T) {
	in := `{"server":"a","label":"fanout","deliveries_per_s":10,"server_cpu_us_per_delivery":3,"latency_p99_us":1000,"lost":0,"duplicated":0,"reordered":0}
{"server":"b","label":"fanout","deliveries_per_s":7,"server_cpu_us_per_delivery":9}
{"server":"a","label":"fanout","deliveries_per_s":30,"server_cpu_us_per_delivery":1,"latency_p99_us":3000,"lost":0,"duplicated":0,"reordered":0}
{"server":"a","label":"fanout","deliveries_per_s":20,"server_cpu_us_per_delivery":2,"latency_p99_us":2000,"lost":0,"duplicated":0,"reordered":0}

{"server":"a","label":"echo","replies_per_s":5,"server_cpu_us_per_reply":4,"error":"boom","error_replies":2}
`
	rows, err := summarize(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].server != "a" || rows[1].server != "b" || rows[2].label != "echo" {
		t.Fatalf("rows %+v", rows)
	}
	if v, _ := rows[0].median("deliveries_per_s"); v != 20 || rows[0].reps() != 3 {
		t.Errorf("median %v over %d runs, want 20 over 3", v, rows[0].reps())
	}
	var b strings.Builder
	if err := writeTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"| fanout | a | 3 | 20 | – / 2.0 | 2.00 | – |", "| echo | a | 1 | 5 |", "1 failed: boom; error_replies 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := summarize(strings.NewReader("{")); err == nil {
		t.Error("bad JSON accepted")
	}
}
