package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// histogramFile is the JSON form of a Histogram written by -latency-out:
// the non-empty buckets as [lowest value, width, count] in nanoseconds, and
// the exact count, sum, minimum and maximum. Files of several processes
// merge by adding the counts of equal buckets (scripts/merge-latency.py);
// a quantile is then the midpoint lo+(width-1)/2 of the bucket holding its
// rank, clamped to min and max, as Histogram.Quantile computes it.
type histogramFile struct {
	Buckets [][3]int64 `json:"buckets"`
	Total   uint64     `json:"total"`
	Sum     float64    `json:"sum"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
}

// writeLatency writes h to path as a histogramFile (nothing when path is
// empty).
func writeLatency(path string, h *Histogram) error {
	if path == "" {
		return nil
	}
	f := histogramFile{Buckets: [][3]int64{}, Total: h.total, Sum: h.sum, Min: h.Min(), Max: h.Max()}
	for i, c := range h.counts {
		if c > 0 {
			lo, w := histRange(i)
			f.Buckets = append(f.Buckets, [3]int64{lo, w, int64(c)})
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode latency histogram: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("-latency-out: %w", err)
	}
	return nil
}
