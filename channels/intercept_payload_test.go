package channels

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

// editObject splits data and composes it with a set of setKey to val
// followed by a removal of removeKey (either may be "" for none).
func editObject(data []byte, setKey, removeKey string, val int64) []byte {
	var keys []string
	var edits []keyEdit
	vals := strconv.AppendInt(nil, val, 10)
	if setKey != "" {
		keys = append(keys, setKey)
		edits = append(edits, keyEdit{op: keySet, start: 0, end: len(vals)})
	}
	if removeKey != "" {
		if removeKey == setKey {
			edits[0] = keyEdit{op: keyRemove}
		} else {
			keys = append(keys, removeKey)
			edits = append(edits, keyEdit{op: keyRemove})
		}
	}
	members := splitObject(data, keys, nil)
	return composeObject(nil, members, keys, edits, vals, make([]bool, len(keys)))
}

func TestEditObject(t *testing.T) {
	for _, tc := range []struct {
		in, set, remove, want string
	}{
		{`{}`, "", "", `{}`},
		{` { } `, "a", "", `{"a":7}`},
		{`{"a":1}`, "", "a", `{}`},
		{`{ "a" : [1, {"}":"{"}] , "b":"x\"y" }`, "c", "b", `{"a" : [1, {"}":"{"}],"c":7}`},
		{`{"a":1,"b":2,"a":3}`, "a", "", `{"a":7,"b":2}`},
		{`{"a":1,"b":2,"a":3}`, "", "a", `{"b":2}`},
		{`{"\u0061":1}`, "a", "", `{"\u0061":7}`},
		{`{"k":1}`, "k", "k", `{}`},
		{`{"x":null,"y":true}`, "y", "x", `{"y":7}`},
	} {
		got := string(editObject([]byte(tc.in), tc.set, tc.remove, 7))
		if got != tc.want {
			t.Errorf("edit %s (set %q, remove %q):\n got: %s\nwant: %s", tc.in, tc.set, tc.remove, got, tc.want)
		}
	}
}

// FuzzInterceptEditObject checks the member splitter and composer against
// encoding/json: for any valid JSON object, the edited payload is valid
// JSON and decodes to the decoded original with the same edits applied.
func FuzzInterceptEditObject(f *testing.F) {
	f.Add([]byte(`{"user_id":"u1","body":"hi","secret":1}`), "mine", "secret", int64(1))
	f.Add([]byte(`{ "a" : {"b":[1,2,{"c":"}"}]} , "d":"\\"" }`), "d", "a", int64(-5))
	f.Add([]byte(`{"a":1,"a":2}`), "a", "", int64(0))
	f.Add([]byte(`{"\u00e9":1,"\xff":2}`), "é", "\ufffd", int64(3))
	f.Fuzz(func(t *testing.T, data []byte, setKey, removeKey string, val int64) {
		var want map[string]any
		if json.Unmarshal(data, &want) != nil || want == nil || !isJSONObject(data) {
			return
		}
		if !utf8.ValidString(setKey) || !utf8.ValidString(removeKey) {
			return // configured keys come from a Caddyfile or JSON: valid UTF-8
		}
		if setKey != "" {
			want[setKey] = float64(val)
		}
		if removeKey != "" {
			delete(want, removeKey)
		}
		out := editObject(data, setKey, removeKey, val)
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("edited %q into invalid JSON %q: %v", data, out, err)
		}
		// Compare after a round trip so that large numbers compare alike.
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		var w, g any
		json.Unmarshal(wb, &w)
		json.Unmarshal(gb, &g)
		if !reflect.DeepEqual(w, g) {
			t.Fatalf("edit %q (set %q=%d, remove %q)\n got: %s\nwant: %s", data, setKey, val, removeKey, gb, wb)
		}
	})
}
