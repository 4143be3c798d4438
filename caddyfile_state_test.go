package caddychannels

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/channels"
)

func TestUnmarshalCaddyfilePresenceHistory(t *testing.T) {
	t.Parallel()
	h, err := unmarshalTestfile(`channels {
		channel room:* {
			join allow
			presence {
				key "assigns.user_id"
				meta "{'device': params.device}"
				batch 200ms
			}
			history 100 ttl 10m {
				on_join 20
			}
		}
		channel lobby {
			join allow
			presence
			history 5
		}
		channel instant:* {
			join allow
			presence {
				batch 0
			}
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(h.RulesSpec.Channels)
	want := `[{"pattern":"room:*","join":{"action":"allow"},` +
		`"presence":{"key":"assigns.user_id","meta":"{'device': params.device}","batch":"200ms"},` +
		`"history":{"size":100,"ttl":"10m0s","on_join":20}},` +
		`{"pattern":"lobby","join":{"action":"allow"},"presence":{},"history":{"size":5}},` +
		`{"pattern":"instant:*","join":{"action":"allow"},"presence":{"batch":"-1ns"}}]`
	if string(got) != want {
		t.Fatalf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
	rules, err := channels.CompileRules(h.RulesSpec)
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	room := rules.Channels[0]
	if room.Presence == nil || room.Presence.Batch.String() != "200ms" || room.Presence.Key == nil || room.Presence.Meta == nil {
		t.Errorf("room presence = %+v", room.Presence)
	}
	if room.History == nil || room.History.Size != 100 || room.History.TTL.String() != "10m0s" || room.History.OnJoin != 20 {
		t.Errorf("room history = %+v", room.History)
	}
	if p := rules.Channels[1].Presence; p == nil || p.Batch != channels.DefaultPresenceBatch {
		t.Errorf("lobby presence batch = %+v, want the default", p)
	}
	if p := rules.Channels[2].Presence; p == nil || p.Batch != 0 {
		t.Errorf("batch 0 = %+v, want no batching", p)
	}
	// The JSON round-trips (Caddy stores the adapted config as JSON).
	var back Handler
	raw, _ := json.Marshal(h)
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("unmarshal adapted JSON: %v", err)
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(raw, again) {
		t.Errorf("JSON round trip\n got: %s\nwant: %s", again, raw)
	}
}

func TestUnmarshalCaddyfilePresenceHistoryErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ input, want string }{
		{"presence on", "wrong argument count"},
		{"presence {\n key \"1\"\n}", "result type is int, want string"},
		{"presence {\n meta \"'x'\"\n}", "result type is string, want map"},
		{"presence {\n key \"headers.x\"\n}", "undeclared reference to 'headers'"},
		{"presence {\n batch 2s\n}", "out of range"},
		{"presence {\n batch soon\n}", "presence batch"},
		{"presence {\n color red\n}", `unrecognized subdirective "color"`},
		{"presence {\n key \"'a'\"\n key \"'b'\"\n}", "duplicate key"},
		{"presence\n presence", "duplicate presence"},
		{"history", "wrong argument count"},
		{"history 0", "must be an integer from 1"},
		{"history many", "must be an integer from 1"},
		{"history 200000", "must be an integer from 1"},
		{"history 10 ttl", "wrong argument count"},
		{"history 10 ttl -1s", "positive duration"},
		{"history 10 age 1s", "want ttl"},
		{"history 10 {\n on_join 11\n}", "from 0 to the size 10"},
		{"history 10 {\n replay 1\n}", `unrecognized subdirective "replay"`},
		{"history 1\n history 2", "duplicate history"},
	} {
		input := "channels {\n channel room:* {\n join allow\n " + tt.input + "\n }\n}"
		_, err := unmarshalTestfile(input)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.input, err, tt.want)
		}
	}
}

func TestCompileRulesStateErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		spec channels.ChannelSpec
		want string
	}{
		{channels.ChannelSpec{Pattern: "a", History: &channels.HistorySpec{Size: 0}}, "size 0 out of range"},
		{channels.ChannelSpec{Pattern: "a", History: &channels.HistorySpec{Size: 5, OnJoin: 6}}, "on_join 6 out of range"},
		{channels.ChannelSpec{Pattern: "a", History: &channels.HistorySpec{Size: 5, TTL: -1}}, "negative ttl"},
		{channels.ChannelSpec{Pattern: "a", Presence: &channels.PresenceSpec{Batch: channels.Duration(2e9)}}, "longer than 1s"},
		{channels.ChannelSpec{Pattern: "a", Presence: &channels.PresenceSpec{Key: "1 +"}}, "presence: key"},
	} {
		_, err := channels.CompileRules(channels.RulesSpec{Channels: []channels.ChannelSpec{tt.spec}})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want %q", tt.spec, err, tt.want)
		}
	}
}
