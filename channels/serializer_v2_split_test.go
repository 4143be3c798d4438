package channels

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzV2DecodeMatchesEncodingJSON checks the hand-split V2 decoder against
// encoding/json: both accept the same frames and find the same elements.
func FuzzV2DecodeMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`["1","2","room:1","e",{"a":[1,{"b":"]"}]}]`,
		` [ null , 3 , "t\"x" , "e\\u00e9" , {} , 9 ] `,
		`["1","2","t","e"]`,
		`["1","2","t","e",[1,2,"x,]"]]`,
		`[1,2,3,4,5]`,
		`["a","b","c","d","e\"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := V2.Decode(data, false)
		var elems []json.RawMessage
		refErr := json.Unmarshal(data, &elems)
		if refErr != nil || len(elems) < 5 {
			if err == nil {
				t.Fatalf("accepted %q that encoding/json rejects (%v, %d elements)", data, refErr, len(elems))
			}
			return
		}
		want := struct{ topic, event string }{}
		topicOK := json.Unmarshal(elems[2], &want.topic) == nil && bytes.TrimSpace(elems[2])[0] == '"'
		eventOK := json.Unmarshal(elems[3], &want.event) == nil && bytes.TrimSpace(elems[3])[0] == '"'
		if !topicOK || !eventOK {
			if err == nil {
				t.Fatalf("accepted non-string topic or event in %q", data)
			}
			return
		}
		if err != nil {
			return // refs of another type: refused by both rules
		}
		if got.Topic != want.topic || got.Event != want.event {
			t.Fatalf("topic/event %q/%q, encoding/json %q/%q", got.Topic, got.Event, want.topic, want.event)
		}
		if !bytes.Equal(bytes.TrimSpace(got.Payload.JSON), bytes.TrimSpace(elems[4])) {
			t.Fatalf("payload %q, encoding/json %q", got.Payload.JSON, elems[4])
		}
	})
}
