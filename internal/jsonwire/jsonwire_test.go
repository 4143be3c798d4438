package jsonwire

import (
	"bytes"
	"encoding/json"
	"testing"
)

var objectSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a" : "x,}" , "b":[1,{"c":"]"}],"d":null}`,
	"{\"k\\\"ey\":{\"n\":[true,false]},\n\t\"e\":-1.5e3}", `{"u":"\u00e9\\"}`,
}

// members returns the raw members of a valid JSON object the way
// encoding/json's tokenizer sees them: each key and its compacted value.
func members(t *testing.T, data []byte) (keys []string, values []string) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var c bytes.Buffer
		json.Compact(&c, v)
		keys, values = append(keys, tok.(string)), append(values, c.String())
	}
	return keys, values
}

// checkMembers fails unless NextMember walks data's members as
// encoding/json does.
func checkMembers(t *testing.T, data []byte) {
	var probe map[string]any
	if json.Unmarshal(data, &probe) != nil || probe == nil {
		return // only valid objects are scanned ("null" decodes into a map as nil)
	}
	wantKeys, wantValues := members(t, data)
	i := ObjectStart(data)
	if i < 0 {
		t.Fatalf("%q: not seen as an object", data)
	}
	for n := 0; ; n++ {
		raw, keyLen, next, ok := NextMember(data, i)
		if !ok {
			if n != len(wantKeys) {
				t.Fatalf("%q: %d members, want %d", data, n, len(wantKeys))
			}
			return
		}
		i = next
		if n >= len(wantKeys) {
			t.Fatalf("%q: more members than %d", data, len(wantKeys))
		}
		var key string
		if err := json.Unmarshal(raw[:keyLen], &key); err != nil || key != wantKeys[n] {
			t.Fatalf("%q: member %d key %q (%v), want %q", data, n, raw[:keyLen], err, wantKeys[n])
		}
		var c bytes.Buffer
		value := raw[SkipSpace(raw, SkipSpace(raw, keyLen)+1):]
		if err := json.Compact(&c, value); err != nil || c.String() != wantValues[n] {
			t.Fatalf("%q: member %d value %q, want %q", data, n, value, wantValues[n])
		}
	}
}

func TestNextMember(t *testing.T) {
	for _, s := range objectSeeds {
		checkMembers(t, []byte(s))
	}
	if ObjectStart([]byte(` [1]`)) != -1 || ObjectStart(nil) != -1 {
		t.Fatal("a non-object seen as an object")
	}
}

// FuzzNextMember checks the member scanner against encoding/json.
func FuzzNextMember(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkMembers(t, data) })
}

// FuzzAppendString checks AppendString against encoding/json: the same
// string once decoded, and valid JSON.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\n\r\t", "é\xff\u2028\u2029<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString([]byte("x"), s)[1:]
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, got, err)
		}
		json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, a, b)
		}
	})
}
