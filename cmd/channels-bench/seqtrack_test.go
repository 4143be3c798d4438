package main

import "testing"

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name                                     string
		n                                        int
		seqs                                     []int64
		distinct, dups, reordered, invalid, lost int64
	}{
		{"in order", 3, []int64{0, 1, 2}, 3, 0, 0, 0, 0},
		{"lost one", 4, []int64{0, 1, 3}, 3, 0, 0, 0, 1},
		{"duplicate", 3, []int64{0, 1, 1, 2}, 3, 1, 0, 0, 0},
		{"reordered", 4, []int64{0, 2, 1, 3}, 4, 0, 1, 0, 0},
		{"late duplicate is not reordered", 3, []int64{0, 1, 2, 0}, 3, 1, 0, 0, 0},
		{"out of range", 2, []int64{-1, 0, 2, 1}, 2, 0, 0, 2, 0},
		{"across words", 130, seqRange(0, 130), 130, 0, 0, 0, 0},
		{"reversed", 100, reversed(100), 100, 0, 99, 0, 0},
		{"nothing", 5, nil, 0, 0, 0, 0, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeqTracker(tt.n)
			for _, v := range tt.seqs {
				s.add(v)
			}
			if s.distinct != tt.distinct || s.dups != tt.dups || s.reordered != tt.reordered ||
				s.invalid != tt.invalid || s.lost() != tt.lost {
				t.Errorf("distinct %d dups %d reordered %d invalid %d lost %d; want %d %d %d %d %d",
					s.distinct, s.dups, s.reordered, s.invalid, s.lost(),
					tt.distinct, tt.dups, tt.reordered, tt.invalid, tt.lost)
			}
			if s.complete() != (tt.lost == 0) {
				t.Errorf("complete() = %v with %d lost", s.complete(), tt.lost)
			}
		})
	}
}

func seqRange(a, b int64) []int64 {
	var s []int64
	for i := a; i < b; i++ {
		s = append(s, i)
	}
	return s
}

func reversed(n int64) []int64 {
	var s []int64
	for i := n - 1; i >= 0; i-- {
		s = append(s, i)
	}
	return s
}
