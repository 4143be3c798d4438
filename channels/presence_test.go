package channels

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

func TestRenderPresence(t *testing.T) {
	items := []presenceItem{
		{key: "u1", ref: "r1", meta: json.RawMessage(`{"a":1}`)},
		{key: "u\"2", ref: "r2", meta: json.RawMessage(`{}`)},
		{key: "u1", ref: "r3", meta: json.RawMessage(`{"b":[true]}`)},
	}
	got := string(renderPresence(items))
	want := `{"u1":{"metas":[{"phx_ref":"r1","a":1},{"phx_ref":"r3","b":[true]}]},"u\"2":{"metas":[{"phx_ref":"r2"}]}}`
	if got != want {
		t.Fatalf("renderPresence\n got: %s\nwant: %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("not valid JSON")
	}
	if got := string(renderPresence(nil)); got != "{}" {
		t.Errorf("empty presence = %s", got)
	}
}

func TestNormalizeMeta(t *testing.T) {
	got, err := normalizeMeta(json.RawMessage(` {"phx_ref":"x","phx_ref_prev":"y","name":"a"} `))
	if err != nil || string(got) != `{"name":"a"}` {
		t.Fatalf("normalizeMeta = %s, %v", got, err)
	}
	for _, bad := range []string{`[]`, `"s"`, `null`, `{`, ``} {
		if _, err := normalizeMeta(json.RawMessage(bad)); err == nil {
			t.Errorf("normalizeMeta(%q) accepted", bad)
		}
	}
}

func TestPresenceRef(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		r := newPresenceRef()
		if len(r) != 16 || seen[r] {
			t.Fatalf("ref %q: want 16 unique characters", r)
		}
		seen[r] = true
	}
}

func TestSinceParam(t *testing.T) {
	for _, tt := range []struct {
		payload     string
		present, ok bool
		epoch       string
		seq         uint64
	}{
		{`{"_since":"ab:12"}`, true, true, "ab", 12},
		{`{"_since":"ab:012"}`, true, false, "", 0},
		{`{"_since":12}`, true, false, "", 0},
		{`{"_since":null}`, false, false, "", 0}, // phoenix.js: _since: null before any message
		{`{"other":1}`, false, false, "", 0},
		{`[1]`, false, false, "", 0},
	} {
		pos, present, ok := sinceParam(JSONPayload(json.RawMessage(tt.payload)))
		if present != tt.present || ok != tt.ok || (ok && (pos.Epoch != tt.epoch || pos.Seq != tt.seq)) {
			t.Errorf("sinceParam(%s) = %v, %v, %v", tt.payload, pos, present, ok)
		}
	}
}

func TestEncodeBroadcastPosition(t *testing.T) {
	m := &pubsub.Message{Topic: "t", Event: "e", Payload: []byte(`{}`), Position: pubsub.Position{Epoch: "ep", Seq: 7}}
	f, err := encodeBroadcast(V2, m, JSONPayload(m.Payload))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.Payload()); got != `[null,"ep:7","t","e",{}]` {
		t.Errorf("V2 broadcast with a position = %s", got)
	}
	f, _ = encodeBroadcast(V1, m, JSONPayload(m.Payload))
	if got := string(f.Payload()); !jsonEq(got, `{"topic":"t","event":"e","payload":{},"ref":"ep:7"}`) {
		t.Errorf("V1 broadcast with a position = %s", got)
	}
	m.Position = pubsub.Position{}
	f, _ = encodeBroadcast(V2, m, JSONPayload(m.Payload))
	if got := string(f.Payload()); got != `[null,null,"t","e",{}]` {
		t.Errorf("V2 broadcast without a position = %s", got)
	}
}

func jsonEq(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`"50ms"`: 50 * time.Millisecond, `"1h"`: time.Hour, `1000`: time.Microsecond} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("Duration(%s) = %v, %v", in, time.Duration(d), err)
		}
	}
	for _, bad := range []string{`"soon"`, `true`, `1.5`, `"`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Duration(%s) accepted", bad)
		}
	}
}

func FuzzDurationJSON(f *testing.F) {
	for _, s := range []string{`"50ms"`, `1000`, `"-1ns"`, `"1h2m3s"`, `null`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Duration
		if d.UnmarshalJSON(b) != nil {
			return
		}
		out, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalJSON(out); err != nil || back != d {
			t.Fatalf("round trip %s -> %s -> %v (%v)", b, out, back, err)
		}
	})
}

func FuzzSinceParam(f *testing.F) {
	for _, s := range []string{`{"_since":"ab:12"}`, `{"_since":"a-b_c:0"}`, `{"_since":1}`, `{}`, `[]`, `{"_since":"x:"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		pos, present, ok := sinceParam(JSONPayload(json.RawMessage(b)))
		if ok && !present {
			t.Fatal("ok without present")
		}
		if ok {
			if _, err := pubsub.ParsePosition(pos.String()); err != nil {
				t.Fatalf("accepted position %v does not reparse: %v", pos, err)
			}
		}
	})
}
