// Package jsonwire holds the small JSON scanning and writing primitives
// the engine and the webhook package share: they work on raw bytes that a
// validator (json.Valid or a serializer) already accepted, and never
// allocate.
package jsonwire

import "unicode/utf8"

// AppendString appends s (a string or bytes, which are not copied) as
// a JSON string literal. Invalid UTF-8 is replaced by U+FFFD, as
// encoding/json does.
func AppendString[T ~string | ~[]byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers
		// that treat JSON as script; escape them as encoding/json does.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// SkipSpace returns the first index at or after i that is not JSON
// whitespace.
func SkipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n') {
		i++
	}
	return i
}

// SkipValue returns the index just past the valid JSON value at i.
func SkipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return SkipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = SkipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// SkipString returns the index just past the string that starts at i.
func SkipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// NextMember scans the object member that starts at or after i in data, a
// valid JSON object whose '{' is before i: it returns the member's raw
// `"key":value` text, the length of its raw key string, and the index to
// pass for the next member. ok is false when no member is left.
func NextMember(data []byte, i int) (raw []byte, keyLen, next int, ok bool) {
	i = SkipSpace(data, i)
	if i < len(data) && data[i] == ',' {
		i = SkipSpace(data, i+1)
	}
	if i >= len(data) || data[i] != '"' {
		return nil, 0, i, false
	}
	start := i
	i = SkipString(data, i)
	keyLen = i - start
	i = SkipSpace(data, i) + 1 // past ':'
	i = SkipSpace(data, i)
	if i >= len(data) {
		return nil, 0, i, false
	}
	i = SkipValue(data, i)
	return data[start:i], keyLen, i, true
}

// ObjectStart returns the index just past the '{' of data, a JSON object
// possibly preceded by whitespace, or -1 when data is not an object.
func ObjectStart(data []byte) int {
	i := SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return -1
	}
	return i + 1
}
