package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Two processes' histograms merge into the quantiles of the whole, and
// their counters add up.
func TestMerge(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, _ := json.Marshal(v)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 99 values in [1000, 1032) in one process, one of 1e6 in the other.
	a := write("a.lat", histogramFile{Buckets: [][3]int64{{1024, 32, 99}}, Total: 99, Sum: 99 * 1030, Min: 1025, Max: 1050})
	b := write("b.lat", histogramFile{Buckets: [][3]int64{{999424, 16384, 1}}, Total: 1, Sum: 1e6, Min: 1e6, Max: 1e6})
	ra := write("a.json", map[string]any{"deliveries": 99, "lost": 0, "drained": true, "last_delivery_unix_ns": 5, "server_cpu_total_s_ready": 2.0})
	rb := write("b.json", map[string]any{"deliveries": 1, "lost": 0, "drained": true, "last_delivery_unix_ns": 7, "server_cpu_total_s_ready": 1.5})
	var out bytes.Buffer
	if err := run([]string{a, b}, []string{ra, rb}, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"latency_count": 100.0, "latency_p50_us": 1.039, "latency_p99_us": 1.039, "latency_max_us": 1000.0,
		"deliveries": 100.0, "lost": 0.0, "drained": true, "last_delivery_unix_ns": 7.0, "server_cpu_total_s_ready": 1.5,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["latency_p999_us"] != 1000.0 {
		t.Errorf("p99.9 = %v, want the one slow value", got["latency_p999_us"])
	}
}
