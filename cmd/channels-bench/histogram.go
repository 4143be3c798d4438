package main

import (
	"math"
	"math/bits"
)

// Histogram layout: log-linear buckets in the style of HdrHistogram. Values
// below 2^histSubBits are exact; above, each power-of-two range is split into
// 2^(histSubBits-1) equal buckets, so a bucket is at most 1/32 of its value
// wide (the midpoint reported is within ~1.6%). Values of 2^histMaxBits
// nanoseconds (~18 minutes) and more share the last bucket; the exact maximum
// is kept separately.
const (
	histSubBits = 6
	histMaxBits = 40
	histHalf    = 1 << (histSubBits - 1)
	histBuckets = (histMaxBits-histSubBits)*histHalf + 2*histHalf
)

// Histogram counts non-negative int64 values (nanoseconds here) in
// log-linear buckets. The zero value is not usable; call newHistogram. It is
// not safe for concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts []uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// newHistogram returns an empty histogram (about 9 KB).
func newHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

// histIndex maps a value to its bucket.
func histIndex(v int64) int {
	if v < 2*histHalf {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits
	i := e*histHalf + int(uint64(v)>>uint(e))
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histRange returns the smallest value of bucket i and its width.
func histRange(i int) (lo, width int64) {
	if i < 2*histHalf {
		return int64(i), 1
	}
	e := i/histHalf - 1
	m := int64(i - e*histHalf)
	return m << uint(e), 1 << uint(e)
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every value counted by o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max returns the largest recorded value exactly, or 0 when empty.
func (h *Histogram) Max() int64 {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Min returns the smallest recorded value exactly, or 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Mean returns the exact mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values lie: the midpoint of the bucket holding the value of rank
// ceil(q*count), clamped to the exact minimum and maximum. It returns 0 when
// the histogram is empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := histRange(i)
			v := lo + (w-1)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
