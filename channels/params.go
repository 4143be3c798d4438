package channels

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits applied by ParseParams so that a hostile query string cannot make
// decoding expensive.
const (
	// maxParams is the largest number of key=value pairs accepted.
	maxParams = 1000
	// maxParamsDepth is the largest number of bracket segments in one key
	// (a[b][c] has two).
	maxParamsDepth = 32
)

// ParseParams decodes a URL query string into connect params with the same
// semantics as Plug.Conn.Query.decode, which Phoenix uses for socket params:
//
//   - pairs are separated by "&" (empty pairs are skipped) and split at the
//     first "="; a key without "=" gets the value "";
//   - keys and values are form-decoded ("+" is a space, %XX escapes) before
//     the brackets of the key are interpreted, so "a%5Bb%5D=1" nests;
//   - "a[b][c]=1" builds nested maps, "a[]=1&a[]=2" builds the list
//     ["1", "2"], and "a[0]=1&a[1]=2" (phoenix.js arrays) builds the map
//     {"0": "1", "1": "2"};
//   - a key repeated at the same level keeps the last value, also when the
//     earlier value had another shape ("a=1&a[b]=2" gives a = {"b": "2"});
//     whether a level becomes a list or a map is decided by its last entry.
//
// Values are strings, maps are map[string]any and lists are []any. Invalid
// percent-encoding, keys or values that are not valid UTF-8, more than 1000
// pairs, or a key with more than 32 bracket segments yield an error.
func ParseParams(rawQuery string) (map[string]any, error) {
	d := paramsDecoder{levels: map[string]int{}}
	d.lists = append(d.lists, nil) // index 0 is the root level
	count := 0
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue
		}
		count++
		if count > maxParams {
			return nil, fmt.Errorf("parse params: more than %d parameters", maxParams)
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := decodeFormComponent(rawKey)
		if err != nil {
			return nil, fmt.Errorf("parse params: key of parameter %d: %w", count, err)
		}
		value, err := decodeFormComponent(rawValue)
		if err != nil {
			return nil, fmt.Errorf("parse params: value of parameter %d: %w", count, err)
		}
		if err := d.add(key, value); err != nil {
			return nil, fmt.Errorf("parse params: parameter %d: %w", count, err)
		}
	}
	return d.finishMap(0), nil
}

// paramEntry is one assignment recorded at a level: a keyed entry (map
// shape) or an unkeyed one (list shape, from "[]"), holding either a string
// value or a reference to a child level.
type paramEntry struct {
	key   string
	keyed bool
	value string
	child int // index of the child level, or -1 for a string value
}

// paramsDecoder mirrors Plug's stateful decoder: every distinct key prefix
// ("a", "a[b]", "a[]", ...) is a level holding the entries assigned to it in
// arrival order; a level is linked into its parent only when it is created.
type paramsDecoder struct {
	levels map[string]int // key prefix -> index into lists
	lists  [][]paramEntry // entries per level, oldest first; 0 is the root
}

// keySegment is one step of a split key: the level it is assigned at
// (empty name with root set for the root level) and the sub-key (keyed is
// false for "[]").
type keySegment struct {
	level string
	root  bool
	key   string
	keyed bool
}

// add records key=value, splitting the key exactly like Plug: the key nests
// only when it ends with "]" and its first "[" is not its first byte; the
// segments are then separated by "][" (any other bracket stays literal).
func (d *paramsDecoder) add(key, value string) error {
	segs, err := splitParamKey(key)
	if err != nil {
		return err
	}
	// Insert from the innermost segment outwards, stopping at the first
	// level that already exists (it is already linked to its parent).
	entry := paramEntry{value: value, child: -1}
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		entry.key, entry.keyed = s.key, s.keyed
		idx, ok := 0, true
		if !s.root {
			idx, ok = d.levels[s.level]
		}
		if ok {
			d.lists[idx] = append(d.lists[idx], entry)
			return nil
		}
		idx = len(d.lists)
		d.lists = append(d.lists, []paramEntry{entry})
		d.levels[s.level] = idx
		entry = paramEntry{child: idx}
	}
	return nil
}

// splitParamKey returns the levels a key assigns to, outermost first.
func splitParamKey(key string) ([]keySegment, error) {
	open := strings.IndexByte(key, '[')
	if key == "" || key[len(key)-1] != ']' || open <= 0 {
		return []keySegment{{root: true, key: key, keyed: true}}, nil
	}
	name := key[:open]
	segs := []keySegment{{root: true, key: name, keyed: true}}
	level := name
	start := open + 1
	for i := start; i < len(key); i++ {
		if key[i] != ']' {
			continue
		}
		last := i == len(key)-1
		if !last && key[i+1] != '[' {
			continue
		}
		if len(segs) > maxParamsDepth {
			return nil, fmt.Errorf("key nests deeper than %d levels", maxParamsDepth)
		}
		segs = append(segs, keySegment{level: level, key: key[start:i], keyed: i > start})
		if last {
			break
		}
		level = key[:i+1]
		start = i + 2
		i++ // skip the "[" of "]["
	}
	return segs, nil
}

// finish converts level idx into a map or a list, decided by its newest
// entry like Plug's finalizer.
func (d *paramsDecoder) finish(idx int) any {
	entries := d.lists[idx]
	if !entries[len(entries)-1].keyed {
		return d.finishList(idx)
	}
	return d.finishMap(idx)
}

// finishMap keeps the keyed entries of level idx, the newest one per key.
func (d *paramsDecoder) finishMap(idx int) map[string]any {
	entries := d.lists[idx]
	out := make(map[string]any, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if !e.keyed {
			continue
		}
		if _, seen := out[e.key]; seen {
			continue
		}
		out[e.key] = d.entryValue(e)
	}
	return out
}

// finishList keeps the unkeyed entries of level idx in arrival order.
func (d *paramsDecoder) finishList(idx int) []any {
	entries := d.lists[idx]
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		if !e.keyed {
			out = append(out, d.entryValue(e))
		}
	}
	return out
}

func (d *paramsDecoder) entryValue(e paramEntry) any {
	if e.child >= 0 {
		return d.finish(e.child)
	}
	return e.value
}

// errBadPercent reports a "%" not followed by two hex digits.
var errBadPercent = errors.New("invalid percent-encoding")

// decodeFormComponent form-decodes s ("+" is a space, %XX escapes) and
// requires the result to be valid UTF-8.
func decodeFormComponent(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		if !utf8.ValidString(s) {
			return "", errors.New("not valid UTF-8")
		}
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w at byte %d", errBadPercent, i)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w at byte %d", errBadPercent, i)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", errors.New("not valid UTF-8")
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
