package channels

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/caddy-channels/caddy-channels/internal/jsonwire"
)

// An intercepted payload is edited without decoding and re-encoding it per
// subscriber: the published object is split once per broadcast into its
// top-level members, kept as raw text, and each subscriber's payload is
// the members that no step touched, byte for byte and in published order,
// plus the keys its steps set. Only the values of set steps are encoded
// per subscriber.

// objectMember is one top-level member of a published JSON object.
type objectMember struct {
	raw    []byte // `"key":value` as published (with any inner whitespace)
	keyLen int    // length of the raw key string at the start of raw
	key    int    // index among the intercept's keys, or -1
}

// keyEditOp is what a subscriber's steps did to one key.
type keyEditOp uint8

const (
	keyKeep keyEditOp = iota
	keyRemove
	keySet
)

// keyEdit is the outcome of a subscriber's steps for one key: the last
// step that applied wins.
type keyEdit struct {
	op         keyEditOp
	start, end int // the encoded value of a set, in the values buffer
}

// splitObject appends the top-level members of data, a valid JSON object,
// to dst and returns it. Each member's key is looked up in keys.
func splitObject(data []byte, keys []string, dst []objectMember) []objectMember {
	i := jsonwire.SkipSpace(data, 0) + 1 // past '{'
	for {
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return dst
		}
		start := i
		i = jsonwire.SkipString(data, i)
		keyLen := i - start
		i = jsonwire.SkipSpace(data, i) + 1 // past ':'
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) {
			return dst
		}
		i = jsonwire.SkipValue(data, i)
		dst = append(dst, objectMember{raw: data[start:i], keyLen: keyLen, key: keyIndex(data[start:start+keyLen], keys)})
		i = jsonwire.SkipSpace(data, i)
		if i >= len(data) || data[i] != ',' {
			return dst
		}
		i++
	}
}

// keyIndex returns the index in keys of the raw JSON string rawKey, or -1.
func keyIndex(rawKey []byte, keys []string) int {
	if len(keys) == 0 {
		return -1
	}
	inner := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		// Decode as encoding/json does: escapes, and U+FFFD for invalid
		// UTF-8.
		var s string
		if json.Unmarshal(rawKey, &s) != nil {
			return -1
		}
		inner = []byte(s)
	}
	for k, key := range keys {
		if string(inner) == key {
			return k
		}
	}
	return -1
}

// composeObject appends to buf the object made of members with edits
// applied: a removed key is left out (every occurrence of it), a set key
// is written at its first published position, or at the end, in the order
// of keys, when it was not published. Set values are slices of vals.
// written has one entry per key and is used as scratch.
func composeObject(buf []byte, members []objectMember, keys []string, edits []keyEdit, vals []byte, written []bool) []byte {
	clear(written)
	buf = append(buf, '{')
	first := true
	sep := func() {
		if !first {
			buf = append(buf, ',')
		}
		first = false
	}
	for _, m := range members {
		if m.key >= 0 {
			e := edits[m.key]
			switch e.op {
			case keyRemove:
				continue
			case keySet:
				if written[m.key] {
					continue
				}
				written[m.key] = true
				sep()
				buf = append(buf, m.raw[:m.keyLen]...)
				buf = append(buf, ':')
				buf = append(buf, vals[e.start:e.end]...)
				continue
			}
		}
		sep()
		buf = append(buf, m.raw...)
	}
	for k, e := range edits {
		if e.op == keySet && !written[k] {
			sep()
			buf = jsonwire.AppendString(buf, keys[k])
			buf = append(buf, ':')
			buf = append(buf, vals[e.start:e.end]...)
		}
	}
	return append(buf, '}')
}

// appendCELJSON appends the JSON encoding of a CEL result to b. Scalars are
// written directly; other values go through jsonValue (see
// Expr.EvalValue for the conversions) and encoding/json.
func appendCELJSON(b []byte, v ref.Val) ([]byte, error) {
	switch t := v.(type) {
	case types.Bool:
		return strconv.AppendBool(b, bool(t)), nil
	case types.String:
		return jsonwire.AppendString(b, string(t)), nil
	case types.Int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case types.Uint:
		return strconv.AppendUint(b, uint64(t), 10), nil
	case types.Null:
		return append(b, "null"...), nil
	}
	val, err := jsonValue(v)
	if err != nil {
		return b, err
	}
	raw, err := json.Marshal(val)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}
