package main

// fields holds the numbers scanFields found in one frame.
type fields struct {
	T, S       int64
	HasT, HasS bool
}

// scanFields finds the integer values of the keys "t" and "s" in a JSON text
// (a V2 frame such as [null,null,"bench:x","msg",{"t":1,"s":2,"p":"…"}]) by
// scanning its bytes, without decoding it and without allocating.
//
// It walks the text as JSON: string contents (escapes included) are skipped,
// so a "t": inside a string never matches; a key is a string followed by a
// colon. The first key spelled exactly "t" (or "s", without escapes) whose
// value is an integer that fits an int64 wins, at any nesting depth, so the
// payload of a broadcast and the response of a reply are both found. A value
// that is not an integer (a float, an exponent, a string, an object) does not
// match and the scan goes on. It stops as soon as both are found. Input that
// is not JSON gives unspecified fields but never a panic.
func scanFields(b []byte) (f fields) {
	i := 0
	for i < len(b) {
		if b[i] != '"' {
			i++
			continue
		}
		start := i + 1
		end := stringEnd(b, start)
		if end < 0 {
			return f
		}
		i = end + 1
		if end-start != 1 || (b[start] != 't' && b[start] != 's') {
			continue
		}
		key := b[start]
		j := skipSpace(b, i)
		if j >= len(b) || b[j] != ':' {
			continue
		}
		j = skipSpace(b, j+1)
		v, n, ok := parseInt(b[j:])
		if !ok {
			i = j
			continue
		}
		i = j + n
		if key == 't' && !f.HasT {
			f.T, f.HasT = v, true
		} else if key == 's' && !f.HasS {
			f.S, f.HasS = v, true
		}
		if f.HasT && f.HasS {
			return f
		}
	}
	return f
}

// stringEnd returns the index of the quote closing the JSON string whose
// contents start at b[start], or -1 when it is not closed. Strings before
// the fields are short (topic, event), so a plain loop beats IndexByte.
func stringEnd(b []byte, start int) int {
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '"':
			return i
		case '\\':
			i++ // skip the escaped byte
		}
	}
	return -1
}

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// parseInt parses a JSON integer at the start of b: an optional minus and
// decimal digits, ended by the end of b or a byte that cannot continue a
// JSON number. It returns the value, the bytes used and whether b held an
// integer that fits an int64 (no fraction, no exponent, no leading zero).
func parseInt(b []byte) (v int64, n int, ok bool) {
	neg := false
	if n < len(b) && b[n] == '-' {
		neg = true
		n++
	}
	first := n
	var u uint64
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		if n-first >= 19 {
			return 0, 0, false
		}
		u = u*10 + uint64(b[n]-'0')
		n++
	}
	digits := n - first
	if digits == 0 || (digits > 1 && b[first] == '0') {
		return 0, 0, false
	}
	if n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return 0, 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, 0, false
		}
		return -int64(u), n, true
	}
	if u > 1<<63-1 {
		return 0, 0, false
	}
	return int64(u), n, true
}
