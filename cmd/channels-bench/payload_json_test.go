package main

import (
	"encoding/json"
	"testing"
)

// -payload chat and diff build valid JSON of about -size bytes whose t
// and s the subscribers find, different from one message to the next.
func TestRealisticPayloads(t *testing.T) {
	t.Cleanup(func() { setPayloadKind(payloadPad, 0) })
	for _, kind := range []string{payloadChat, payloadDiff} {
		for _, size := range []int{1 << 10, 10 << 10} {
			setPayloadKind(kind, size)
			a := appendPayload(nil, 1700000000000000000, 5, size)
			b := appendPayload(nil, 1700000000000000000, 6, size)
			if !json.Valid(a) || len(a) < size*9/10 || len(a) > size*11/10 {
				t.Errorf("%s %d: %d bytes, valid %v", kind, size, len(a), json.Valid(a))
			}
			if f := scanFields(a); f != (fields{T: 1700000000000000000, S: 5, HasT: true, HasS: true}) {
				t.Errorf("%s %d: scan = %+v", kind, size, f)
			}
			if string(a[30:]) == string(b[30:]) {
				t.Errorf("%s %d: two messages share their body", kind, size)
			}
			if neg := appendPayload(nil, 1, -1, size); !json.Valid(neg) {
				t.Errorf("%s %d: warm-up message (s=-1) is not JSON", kind, size)
			}
		}
	}
	setPayloadKind(payloadPad, 64)
	if got := string(appendPayload(nil, 1, 2, 24)); got != `{"t":1,"s":2,"p":"xxxx"}` {
		t.Errorf("pad after chat: %s", got)
	}
}
