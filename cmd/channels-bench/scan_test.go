package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
)

// scanCases are real V2 frames (as the server sends them) and edge cases.
var scanCases = []struct {
	name  string
	frame string
	want  fields
}{
	{
		name:  "broadcast",
		frame: `[null,null,"bench:cap","msg",{"t":1700000000000000001,"s":6,"p":"xxxx"}]`,
		want:  fields{T: 1700000000000000001, S: 6, HasT: true, HasS: true},
	},
	{
		name:  "echo reply, fields in the response",
		frame: `["1","2","bench:cap","phx_reply",{"response":{"t":1700000000000000000,"s":5,"p":"xx"},"status":"ok"}]`,
		want:  fields{T: 1700000000000000000, S: 5, HasT: true, HasS: true},
	},
	{
		name:  "escaped quotes and keys in strings before the fields",
		frame: `[null,null,"bench:cap","msg",{"a\"t\":":"\\\"s\":1","t":1700000000000000002,"s":7}]`,
		want:  fields{T: 1700000000000000002, S: 7, HasT: true, HasS: true},
	},
	{
		name:  "key ending in an escaped backslash",
		frame: `[null,null,"x","msg",{"q\\":"\"t\":1","t":3,"s":4}]`,
		want:  fields{T: 3, S: 4, HasT: true, HasS: true},
	},
	{
		name:  "topic that looks like the field",
		frame: `[null,null,"\"t\":5,\"s\":6","msg",{"t":8,"s":9}]`,
		want:  fields{T: 8, S: 9, HasT: true, HasS: true},
	},
	{
		name:  "padding that contains the field",
		frame: `[null,null,"x","msg",{"p":"\"t\":1,\"s\":2","s":12,"t":11}]`,
		want:  fields{T: 11, S: 12, HasT: true, HasS: true},
	},
	{
		name:  "join reply: no fields",
		frame: `["1","1","bench:cap","phx_reply",{"response":{},"status":"ok"}]`,
		want:  fields{},
	},
	{
		name:  "heartbeat reply: no fields",
		frame: `[null,"4","phoenix","phx_reply",{"response":{},"status":"ok"}]`,
		want:  fields{},
	},
	{
		name:  "missing s",
		frame: `[null,null,"x","msg",{"t":42,"p":"s"}]`,
		want:  fields{T: 42, HasT: true},
	},
	{
		name:  "missing t",
		frame: `[null,null,"x","msg",{"s":-1}]`,
		want:  fields{S: -1, HasS: true},
	},
	{
		name:  "whitespace around the colon",
		frame: "[null,null,\"x\",\"msg\",{ \"t\" :\t 7 ,\n\"s\"\r\n: 8 }]",
		want:  fields{T: 7, S: 8, HasT: true, HasS: true},
	},
	{
		name:  "non-integer values do not match; a later one does",
		frame: `[null,null,"x","msg",{"t":1.5,"s":"3","x":{"t":2e3},"t":9,"s":[1],"s":10}]`,
		want:  fields{T: 9, S: 10, HasT: true, HasS: true},
	},
	{
		name:  "first match wins",
		frame: `{"t":1,"t":2,"s":3,"s":4}`,
		want:  fields{T: 1, S: 3, HasT: true, HasS: true},
	},
	{
		name:  "int64 limits",
		frame: `{"t":9223372036854775807,"s":-9223372036854775808}`,
		want:  fields{T: 9223372036854775807, S: -9223372036854775808, HasT: true, HasS: true},
	},
	{
		name:  "overflow does not match",
		frame: `{"t":9223372036854775808,"s":-9223372036854775809}`,
		want:  fields{},
	},
	{
		name:  "longer key names do not match",
		frame: `{"ts":1,"st":2,"":3,"T":4}`,
		want:  fields{},
	},
	{
		name:  "truncated frame",
		frame: `[null,null,"x","msg",{"t":5,"s":`,
		want:  fields{T: 5, HasT: true},
	},
	{
		name:  "unterminated string",
		frame: `[null,null,"x\"t\":5`,
		want:  fields{},
	},
	{name: "empty", frame: ``, want: fields{}},
}

func TestScanFields(t *testing.T) {
	for _, tt := range scanCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := scanFields([]byte(tt.frame)); got != tt.want {
				t.Errorf("scanFields(%s) = %+v, want %+v", tt.frame, got, tt.want)
			}
		})
	}
}

func TestScanFieldsDoesNotAllocate(t *testing.T) {
	b := []byte(`[null,null,"bench:cap","msg",{"t":1700000000000000001,"s":6,"p":"xxxx"}]`)
	if n := testing.AllocsPerRun(100, func() { scanFields(b) }); n != 0 {
		t.Errorf("scanFields allocates %v times per call", n)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		v    int64
		n    int
		ok   bool
		name string
	}{
		{"0", 0, 1, true, "zero"},
		{"-0,", 0, 2, true, "minus zero"},
		{"123}", 123, 3, true, "ended by brace"},
		{"01", 0, 0, false, "leading zero"},
		{"-", 0, 0, false, "lone minus"},
		{"1.0", 0, 0, false, "fraction"},
		{"1E3", 0, 0, false, "exponent"},
		{"99999999999999999999", 0, 0, false, "twenty digits"},
		{"x", 0, 0, false, "not a number"},
	}
	for _, tt := range tests {
		v, n, ok := parseInt([]byte(tt.in))
		if v != tt.v || n != tt.n || ok != tt.ok {
			t.Errorf("%s: parseInt(%q) = %d, %d, %v; want %d, %d, %v", tt.name, tt.in, v, n, ok, tt.v, tt.n, tt.ok)
		}
	}
}

// jsonInteger matches the JSON numbers scanFields accepts.
var jsonInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// referenceFields finds the same fields with encoding/json's tokenizer:
// the first "t" and "s" object keys, at any depth, whose values are
// integers fitting an int64.
func referenceFields(data []byte) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type level struct{ object, wantKey bool }
	var stack []level
	var f fields
	key := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return f, err
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, level{object: true, wantKey: true})
			case '[':
				stack = append(stack, level{})
			default:
				stack = stack[:top]
				if top > 0 && stack[top-1].object {
					stack[top-1].wantKey = true
				}
			}
			continue
		}
		if top >= 0 && stack[top].object && stack[top].wantKey {
			key, _ = tok.(string)
			stack[top].wantKey = false
			continue
		}
		if top >= 0 && stack[top].object {
			stack[top].wantKey = true
			if n, ok := tok.(json.Number); ok && jsonInteger.MatchString(string(n)) {
				v, err := strconv.ParseInt(string(n), 10, 64)
				if err == nil && key == "t" && !f.HasT {
					f.T, f.HasT = v, true
				}
				if err == nil && key == "s" && !f.HasS {
					f.S, f.HasS = v, true
				}
			}
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, tt := range scanCases {
		f.Add([]byte(tt.frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := scanFields(data) // must not panic on anything
		// On valid JSON whose keys need no escapes, the scanner must agree
		// with a real JSON tokenizer.
		if !json.Valid(data) || bytes.IndexByte(data, '\\') >= 0 {
			return
		}
		want, err := referenceFields(data)
		if err != nil {
			return
		}
		if got != want {
			t.Errorf("scanFields(%q) = %+v, reference %+v", data, got, want)
		}
	})
}

func BenchmarkScanFields(b *testing.B) {
	frame := []byte(`[null,null,"bench:load","msg",{"t":1700000000000000001,"s":123456,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		scanFields(frame)
	}
}
