// Command bench-merge merges the results of several channels-bench fanout
// processes that shared one run (subscriber processes started with
// -publish=false, see scripts/run-fullnode-bench.sh): it adds up the latency
// histograms they wrote with -latency-out and the counters of their -json
// results, and prints one JSON object with the merged latency quantiles (µs,
// computed as the tool computes them) and totals.
//
//	go run ./scripts/bench-merge -lat 'a.lat,b.lat' -json 'a.json,b.json'
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// histogramFile is what channels-bench -latency-out writes: non-empty
// buckets as [lowest value, width, count] (ns) and exact totals.
type histogramFile struct {
	Buckets [][3]int64 `json:"buckets"`
	Total   uint64     `json:"total"`
	Sum     float64    `json:"sum"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
}

func main() {
	lat := flag.String("lat", "", "comma-separated -latency-out files")
	res := flag.String("json", "", "comma-separated -json result files (one object each)")
	flag.Parse()
	if err := run(split(*lat), split(*res), os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench-merge: %v\n", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// run merges the files and writes the result.
func run(latFiles, resFiles []string, w io.Writer) error {
	out := map[string]any{}
	if len(latFiles) > 0 {
		var hs []histogramFile
		for _, p := range latFiles {
			var h histogramFile
			if err := readJSON(p, &h); err != nil {
				return err
			}
			hs = append(hs, h)
		}
		m := merge(hs)
		out["latency_count"] = m.Total
		for _, q := range []struct {
			key string
			q   float64
		}{{"latency_p50_us", 0.5}, {"latency_p90_us", 0.9}, {"latency_p99_us", 0.99}, {"latency_p999_us", 0.999}} {
			out[q.key] = float64(m.quantile(q.q)) / 1e3
		}
		out["latency_max_us"] = float64(m.Max) / 1e3
		if m.Total > 0 {
			out["latency_mean_us"] = m.Sum / float64(m.Total) / 1e3
		}
	}
	if len(resFiles) > 0 {
		sums := map[string]float64{}
		maxes := map[string]float64{}
		mins := map[string]float64{}
		allDrained := true
		for _, p := range resFiles {
			var r map[string]any
			if err := readJSON(p, &r); err != nil {
				return err
			}
			for _, k := range []string{"sockets", "subscribers_ok", "subscribers_failed", "deliveries", "deliveries_expected",
				"lost", "duplicated", "reordered", "subscribers_complete", "subscribers_disconnected", "client_cpu_s"} {
				if v, ok := r[k].(float64); ok {
					sums[k] += v
				}
			}
			for _, k := range []string{"last_delivery_unix_ns", "server_cpu_total_s_done", "server_done_unix_ns"} {
				if v, ok := r[k].(float64); ok {
					maxes[k] = math.Max(maxes[k], v)
				}
			}
			for _, k := range []string{"first_delivery_unix_ns", "server_cpu_total_s_ready"} {
				if v, ok := r[k].(float64); ok && v > 0 {
					if old, seen := mins[k]; !seen || v < old {
						mins[k] = v
					}
				}
			}
			if d, ok := r["drained"].(bool); !ok || !d {
				allDrained = false
			}
		}
		for k, v := range sums {
			out[k] = v
		}
		for k, v := range maxes {
			out[k] = v
		}
		for k, v := range mins {
			out[k] = v
		}
		out["drained"] = allDrained
		out["processes"] = len(resFiles)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// merge adds the counts of equal buckets.
func merge(hs []histogramFile) histogramFile {
	m := histogramFile{Min: math.MaxInt64}
	counts := map[[2]int64]int64{}
	for _, h := range hs {
		if h.Total == 0 {
			continue
		}
		for _, b := range h.Buckets {
			counts[[2]int64{b[0], b[1]}] += b[2]
		}
		m.Total += h.Total
		m.Sum += h.Sum
		m.Min = min(m.Min, h.Min)
		m.Max = max(m.Max, h.Max)
	}
	if m.Total == 0 {
		m.Min = 0
	}
	for k, c := range counts {
		m.Buckets = append(m.Buckets, [3]int64{k[0], k[1], c})
	}
	sort.Slice(m.Buckets, func(i, j int) bool { return m.Buckets[i][0] < m.Buckets[j][0] })
	return m
}

// quantile is Histogram.Quantile of channels-bench: the midpoint of the
// bucket holding rank ceil(q*total), clamped to min and max.
func (h histogramFile) quantile(q float64) int64 {
	if h.Total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.Total))), 1)
	var seen uint64
	for _, b := range h.Buckets {
		seen += uint64(b[2])
		if seen >= rank {
			return min(max(b[0]+(b[1]-1)/2, h.Min), h.Max)
		}
	}
	return h.Max
}
