package main

import (
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseResultsErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{`{}`, "decoding results"},
		{`[]`, "no results"},
		{`[{"server":"","subscribers":1}]`, "result 0: empty server"},
		{`[{"server":"a","subscribers":0}]`, "result 0 (a): subscribers must be positive"},
		{`[{"server":"a","subscribers":1,"deliveries_per_sec":-1}]`, "deliveries_per_sec must be"},
		{`[{"server":"a","subscribers":1,"p99_ms":1e300}]`, "p99_ms must be"},
		{`[{"server":"a","subscribers":1,"p99_ms":"1"}]`, "decoding results"},
	}
	for _, tt := range tests {
		_, err := parseResults([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseResults(%s) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestFormatNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"}, {12, "12"}, {0.25, "0.25"}, {2.5, "2.5"}, {1000, "1K"}, {1500, "1.5K"},
		{250000, "250K"}, {1e6, "1M"}, {1.25e6, "1.25M"}, {15000, "15K"},
	}
	for _, tt := range tests {
		if got := formatNumber(tt.v); got != tt.want {
			t.Errorf("formatNumber(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestNiceScale(t *testing.T) {
	tests := []struct{ max, step, top float64 }{
		{0, 1, 5}, {270000, 100000, 300000}, {140, 50, 150}, {8.8, 2, 10}, {1, 0.25, 1.25},
	}
	for _, tt := range tests {
		if step, top := niceScale(tt.max); step != tt.step || top != tt.top {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tt.max, step, top, tt.step, tt.top)
		}
	}
}

// countColor counts the pixels of exactly colour c.
func countColor(t *testing.T, results []Result, c color.RGBA) int {
	t.Helper()
	img := drawChart(results, "t")
	n := 0
	for i := 0; i < len(img.Pix); i += 4 {
		if img.Pix[i] == c.R && img.Pix[i+1] == c.G && img.Pix[i+2] == c.B {
			n++
		}
	}
	return n
}

// Each series gets its own colour; a series without values only shows in
// the legend.
func TestDrawChartSeries(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	legendOnly := countColor(t, []Result{{Server: "a", Subscribers: 10}}, palette[0])
	withData := countColor(t, []Result{
		{Server: "a", Subscribers: 10, DeliveriesPerSec: v(100), P99Ms: v(2)},
		{Server: "a", Subscribers: 100, DeliveriesPerSec: v(300), P99Ms: v(5)},
	}, palette[0])
	if legendOnly == 0 || withData <= legendOnly+100 {
		t.Fatalf("series pixels: %d with data, %d legend only", withData, legendOnly)
	}
	second := countColor(t, []Result{
		{Server: "a", Subscribers: 10, DeliveriesPerSec: v(100)},
		{Server: "b", Subscribers: 10, DeliveriesPerSec: v(200)},
	}, palette[1])
	if second == 0 {
		t.Fatal("second series not drawn in the second colour")
	}
}

func TestRunSample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "chart.png")
	if err := run("sample.json", "", 0, out, "sample"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("chart file: %d bytes, %v", len(b), err)
	}
	if err := run("missing.json", "", 0, out, ""); err == nil {
		t.Fatal("missing input accepted")
	}
}

func FuzzParseResults(f *testing.F) {
	f.Add([]byte(`[{"server":"a","subscribers":1,"deliveries_per_sec":5,"p99_ms":0.5}]`))
	f.Add([]byte(`[{"server":"a","subscribers":3,"deliveries_per_sec":null},{"server":"b","subscribers":1,"p99_ms":1e15}]`))
	f.Add([]byte(`[{"server":"a","subscribers":9223372036854775807,"deliveries_per_sec":0}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		results, err := parseResults(data)
		if err != nil {
			return
		}
		if len(results) > 50 {
			return // drawing is slow; the parser is what is fuzzed
		}
		img := drawChart(results, "fuzz")
		if img.Bounds().Dx() != chartW || img.Bounds().Dy() != chartH {
			t.Fatalf("image is %v", img.Bounds())
		}
	})
}

func TestParseLoadToolResults(t *testing.T) {
	data := []byte(`{"server":"a","scenario":"fanout","sockets":100,"rate_target":100,"deliveries_per_s":10000,"latency_p99_us":1500}
{"server":"a","scenario":"fanout","sockets":1000,"rate_target":0,"deliveries_per_s":300000,"latency_p99_us":20000}
{"server":"a","scenario":"echo","sockets":1000}
{"server":"b","scenario":"fanout","sockets":100,"rate_target":100,"deliveries_per_s":9000}
`)
	got, err := parseLoadToolResults(data, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Server != "a" || got[0].Subscribers != 100 || *got[0].P99Ms != 1.5 || got[1].P99Ms != nil || *got[1].DeliveriesPerSec != 9000 {
		t.Fatalf("got %+v", got)
	}
	// Repetitions become one point: the median of each value.
	reps := []byte(`{"server":"a","scenario":"fanout","sockets":100,"rate_target":100,"deliveries_per_s":3,"latency_p99_us":9000}
{"server":"a","scenario":"fanout","sockets":100,"rate_target":100,"deliveries_per_s":1,"latency_p99_us":1000}
{"server":"a","scenario":"fanout","sockets":100,"rate_target":100,"deliveries_per_s":2,"latency_p99_us":2000}
{"server":"a","scenario":"fanout","sockets":500,"rate_target":100,"deliveries_per_s":4,"latency_p99_us":4000}
{"server":"a","scenario":"fanout","sockets":500,"rate_target":100,"deliveries_per_s":6,"latency_p99_us":8000}
`)
	got, err = parseLoadToolResults(reps, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || *got[0].DeliveriesPerSec != 2 || *got[0].P99Ms != 2 || *got[1].DeliveriesPerSec != 5 || *got[1].P99Ms != 6 {
		t.Fatalf("medians: got %+v", got)
	}
	if _, err := parseLoadToolResults([]byte(`{"scenario":"echo"}`), 100); err == nil {
		t.Fatal("want an error when no fan-out run matches")
	}
}
