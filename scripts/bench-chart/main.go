// Command bench-chart draws the benchmark chart of BENCHMARKS.md: a PNG
// with two panels, deliveries per second and p99 latency against the
// number of subscribers, one line per server.
//
// The input is a JSON array of measurements, one per server and
// subscriber count (see sample.json):
//
//	[{"server": "caddy-channels", "subscribers": 1000,
//	  "deliveries_per_sec": 210000, "p99_ms": 12.5}, …]
//
// A measurement whose deliveries_per_sec or p99_ms is null or absent is
// left out of that panel. Servers are drawn in the order they first
// appear; subscriber counts are spaced evenly on the x axis.
//
// Usage:
//
//	go run ./scripts/bench-chart -in results.json -out chart.png [-title "…"]
//	go run ./scripts/bench-chart -jsonl scripts/results/bench-results.jsonl -rate 100 -out chart.png
//
// With -jsonl, the input is the load tool's JSON lines (as written by
// scripts/run-benchmarks.sh) and the fan-out runs at -rate msg/s are drawn.
//
// It needs only the standard library: text is drawn with a built-in 5x7
// bitmap font.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"slices"
)

// Result is one measurement: a server under one subscriber count.
type Result struct {
	Server           string   `json:"server"`
	Subscribers      int      `json:"subscribers"`
	DeliveriesPerSec *float64 `json:"deliveries_per_sec"`
	P99Ms            *float64 `json:"p99_ms"`
}

func main() {
	in := flag.String("in", "", "JSON results file")
	jsonl := flag.String("jsonl", "", "load-tool JSON lines file (instead of -in)")
	rate := flag.Float64("rate", 100, "with -jsonl: the offered rate of the fan-out runs to draw")
	out := flag.String("out", "bench-chart.png", "PNG file to write")
	title := flag.String("title", "Fan-out: one topic, N subscribers", "chart title")
	flag.Parse()
	if err := run(*in, *jsonl, *rate, *out, *title); err != nil {
		fmt.Fprintln(os.Stderr, "bench-chart:", err)
		os.Exit(1)
	}
}

func run(in, jsonl string, rate float64, out, title string) error {
	if (in == "") == (jsonl == "") {
		return errors.New("give exactly one of -in and -jsonl")
	}
	path, parse := in, parseResults
	if jsonl != "" {
		path = jsonl
		parse = func(data []byte) ([]Result, error) { return parseLoadToolResults(data, rate) }
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading results: %w", err)
	}
	results, err := parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	img := drawChart(results, title)
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating chart: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encoding %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}

// parseResults decodes and checks the results file.
func parseResults(data []byte) ([]Result, error) {
	var results []Result
	if err := json.Unmarshal(data, &results); err != nil {
		return nil, fmt.Errorf("decoding results: %w", err)
	}
	if len(results) == 0 {
		return nil, errors.New("no results")
	}
	for i, r := range results {
		switch {
		case r.Server == "":
			return nil, fmt.Errorf("result %d: empty server", i)
		case r.Subscribers <= 0:
			return nil, fmt.Errorf("result %d (%s): subscribers must be positive", i, r.Server)
		case !validValue(r.DeliveriesPerSec):
			return nil, fmt.Errorf("result %d (%s): deliveries_per_sec must be a number from 0 to 1e15", i, r.Server)
		case !validValue(r.P99Ms):
			return nil, fmt.Errorf("result %d (%s): p99_ms must be a number from 0 to 1e15", i, r.Server)
		}
	}
	return results, nil
}

// maxValue bounds measurements, so that axis arithmetic stays finite.
const maxValue = 1e15

// validValue reports whether an optional measurement is absent or a
// number from 0 to maxValue.
func validValue(v *float64) bool {
	return v == nil || (*v >= 0 && *v <= maxValue)
}

// series is one server's points in one panel: y per subscriber index.
type series struct {
	name   string
	points map[int]float64 // x index → value
}

// panelData extracts one metric from the results: the series in order of
// first appearance, with x indexes into xs (the sorted subscriber counts).
func panelData(results []Result, xs []int, metric func(Result) *float64) []series {
	index := make(map[int]int, len(xs))
	for i, x := range xs {
		index[x] = i
	}
	var out []series
	pos := map[string]int{}
	for _, r := range results {
		i, ok := pos[r.Server]
		if !ok {
			i = len(out)
			pos[r.Server] = i
			out = append(out, series{name: r.Server, points: map[int]float64{}})
		}
		if v := metric(r); v != nil {
			out[i].points[index[r.Subscribers]] = *v
		}
	}
	return out
}

// subscriberCounts returns the distinct subscriber counts, ascending.
func subscriberCounts(results []Result) []int {
	seen := map[int]bool{}
	var xs []int
	for _, r := range results {
		if !seen[r.Subscribers] {
			seen[r.Subscribers] = true
			xs = append(xs, r.Subscribers)
		}
	}
	slices.Sort(xs)
	return xs
}

// drawChart renders both panels, the title and the legend.
func drawChart(results []Result, title string) *image.RGBA {
	xs := subscriberCounts(results)
	rate := panelData(results, xs, func(r Result) *float64 { return r.DeliveriesPerSec })
	p99 := panelData(results, xs, func(r Result) *float64 { return r.P99Ms })

	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	fillRect(img, 0, 0, chartW, chartH, white)
	drawText(img, (chartW-textWidth(title, 3))/2, 16, title, 3, black)
	drawLegend(img, rate, 56)
	drawPanel(img, image.Rect(0, 90, chartW/2, chartH), "Deliveries/s", xs, rate)
	drawPanel(img, image.Rect(chartW/2, 90, chartW, chartH), "p99 latency (ms)", xs, p99)
	return img
}
