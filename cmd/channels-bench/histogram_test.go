package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistIndexRangeRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 123456789, 1<<40 - 1} {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index of %d = %d, below the previous %d", v, i, prev)
		}
		prev = i
		lo, w := histRange(i)
		if v < lo || v >= lo+w {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, lo, lo+w)
		}
		if v >= 64 && float64(w)/float64(lo) > 1.0/32 {
			t.Errorf("bucket %d of %d is %d wide, more than 1/32 of %d", i, v, w, lo)
		}
	}
	if got := histIndex(math.MaxInt64); got != histBuckets-1 {
		t.Errorf("index of MaxInt64 = %d, want last bucket %d", got, histBuckets-1)
	}
	if got := histIndex(-5); got != 0 {
		t.Errorf("index of -5 = %d, want 0", got)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 50; v++ {
		h.Record(v)
	}
	tests := []struct {
		q    float64
		want int64
	}{
		{0, 1}, {0.02, 1}, {0.5, 25}, {0.9, 45}, {0.99, 50}, {1, 50},
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %d, want %d", tt.q, got, tt.want)
		}
	}
	if h.Count() != 50 || h.Min() != 1 || h.Max() != 50 || h.Mean() != 25.5 {
		t.Errorf("count %d min %d max %d mean %v, want 50 1 50 25.5", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Error("empty histogram must report zeros")
	}
}

// TestHistogramKnownDistributions compares the quantiles with the exact
// ones of the same values, sorted: they must be within the bucket error.
func TestHistogramKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		gen  func(i int) int64
	}{
		{"uniform 1..1e6", func(i int) int64 { return int64(i%1_000_000) + 1 }},
		{"exponential mean 200µs", func(int) int64 { return int64(rng.ExpFloat64() * 200_000) }},
		{"lognormal around 1ms", func(int) int64 { return int64(math.Exp(rng.NormFloat64()*1.5) * 1e6) }},
		{"bimodal 50µs and 30ms", func(i int) int64 {
			if i%100 < 95 {
				return 50_000 + int64(rng.IntN(1000))
			}
			return 30_000_000 + int64(rng.IntN(1_000_000))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistogram()
			vals := make([]int64, 200_000)
			for i := range vals {
				vals[i] = tt.gen(i)
				h.Record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
				got := h.Quantile(q)
				if d := math.Abs(float64(got-exact)) / float64(max(exact, 1)); d > 0.017 && math.Abs(float64(got-exact)) > 1 {
					t.Errorf("p%v = %d, exact %d (error %.2f%%)", q*100, got, exact, d*100)
				}
			}
			if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
		})
	}
}

func TestHistogramMergeEqualsWhole(t *testing.T) {
	whole, a, b := newHistogram(), newHistogram(), newHistogram()
	for v := int64(0); v < 100_000; v += 7 {
		whole.Record(v * 13)
		if v%2 == 0 {
			a.Record(v * 13)
		} else {
			b.Record(v * 13)
		}
	}
	merged := newHistogram()
	merged.Merge(a)
	merged.Merge(b)
	merged.Merge(newHistogram())
	merged.Merge(nil)
	if merged.Count() != whole.Count() || merged.Max() != whole.Max() || merged.Min() != whole.Min() {
		t.Fatalf("merged count/min/max %d/%d/%d, whole %d/%d/%d",
			merged.Count(), merged.Min(), merged.Max(), whole.Count(), whole.Min(), whole.Max())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 1} {
		if merged.Quantile(q) != whole.Quantile(q) {
			t.Errorf("Quantile(%v): merged %d, whole %d", q, merged.Quantile(q), whole.Quantile(q))
		}
	}
}

func TestHistogramHugeValuesClamp(t *testing.T) {
	h := newHistogram()
	h.Record(-3)
	h.Record(1 << 50)
	if h.Min() != 0 || h.Max() != 1<<50 || h.Quantile(1) != 1<<50 {
		t.Errorf("min %d max %d p100 %d", h.Min(), h.Max(), h.Quantile(1))
	}
	if got := h.Quantile(0.99); got > 1<<50 || got < 1<<39 {
		t.Errorf("p99 of a clamped value = %d, want within the last bucket, at most the max", got)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := newHistogram()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i&0xffff) * 1000)
	}
}
