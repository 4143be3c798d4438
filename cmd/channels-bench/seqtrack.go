package main

// seqTracker checks the sequence numbers 0..n-1 one subscriber receives: a
// bitset of n bits tells first deliveries from duplicates, and the highest
// number seen so far tells in-order from reordered ones.
type seqTracker struct {
	seen      []uint64
	n         int64
	max       int64
	distinct  int64
	dups      int64
	reordered int64
	invalid   int64
}

// newSeqTracker returns a tracker for the sequence numbers 0..n-1.
func newSeqTracker(n int) *seqTracker {
	return &seqTracker{seen: make([]uint64, (n+63)/64), n: int64(n), max: -1}
}

// add records sequence number s and reports whether it is a first delivery
// of a valid number. A number outside 0..n-1 counts as invalid; a number
// seen before counts as a duplicate; a first delivery below the highest
// number seen so far counts as reordered.
func (t *seqTracker) add(s int64) bool {
	if s < 0 || s >= t.n {
		t.invalid++
		return false
	}
	w, bit := s/64, uint64(1)<<uint(s%64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= bit
	t.distinct++
	if s < t.max {
		t.reordered++
	} else {
		t.max = s
	}
	return true
}

// lost returns how many of the n numbers have not been received.
func (t *seqTracker) lost() int64 { return t.n - t.distinct }

// complete reports whether every number has been received.
func (t *seqTracker) complete() bool { return t.distinct == t.n }
