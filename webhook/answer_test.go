package webhook

import (
	"encoding/json"
	"reflect"
	"testing"
)

// plainHandleInAnswer is HandleInAnswer without its decoder.
type plainHandleInAnswer HandleInAnswer

// checkHandleInAnswer fails unless decoding data into a HandleInAnswer
// gives what encoding/json gives for the plain struct.
func checkHandleInAnswer(t *testing.T, data []byte) {
	t.Helper()
	var got HandleInAnswer
	var want plainHandleInAnswer
	gotErr := got.DecodeAnswer(data)
	wantErr := json.Unmarshal(data, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(plainHandleInAnswer(got), want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
}

var handleInAnswerSeeds = []string{
	`{"reply":{"status":"ok","response":{"body":"hi"}}}`,
	`{"reply":{"response":{"a":[1,2,{"b":null}]}}}`,
	` { "Reply" : { "STATUS" : "error" , "response" : "x" , "binary" : "AAE=" } } `,
	`{"reply":null}`,
	`{"reply":{"status":null,"binary":null,"response":null}}`,
	`{"reply":{"status":"o\u006b","response":1}}`,
	`{"reply":{"status":5}}`,
	`{"reply":[]}`,
	`{"reply":{"status":"a"},"reply":{"response":2}}`,
	`{"broadcast":[{"event":"e","payload":{}}],"broadcast_from":[],"push":[{"event":"p","binary":"AA=="}]}`,
	`{"assigns":{"n":1},"assigns":{"m":2},"presence":{"meta":{"x":1}},"stop":{"reason":"bye"}}`,
	`{"stop":null,"unknown":{"deep":[1,"2",true]},"\u0072eply":{"status":"ok"}}`,
	`{"ſtop":{}}`,
	`{"reply":{"status":"\xff"}}`,
	`[]`,
	`null`,
	`{}`,
}

func TestHandleInAnswerMatchesEncodingJSON(t *testing.T) {
	for _, s := range handleInAnswerSeeds {
		checkHandleInAnswer(t, []byte(s))
	}
}

// FuzzHandleInAnswer checks the hand decoder of handle_in answers against
// encoding/json.
func FuzzHandleInAnswer(f *testing.F) {
	for _, s := range handleInAnswerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkHandleInAnswer(t, data)
	})
}

func BenchmarkHandleInAnswer(b *testing.B) {
	body := []byte(`{"reply":{"status":"ok","response":{"body":"hello hello hello hello hello hello hello hello"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		var a HandleInAnswer
		if err := a.DecodeAnswer(body); err != nil || a.Reply == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandleInAnswerEncodingJSON(b *testing.B) {
	body := []byte(`{"reply":{"status":"ok","response":{"body":"hello hello hello hello hello hello hello hello"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		var a plainHandleInAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.Reply == nil {
			b.Fatal(err)
		}
	}
}
