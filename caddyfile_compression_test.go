package caddychannels

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/channels"
)

func TestUnmarshalCaddyfileCompression(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		input, json string
		engine      channels.CompressionConfig
	}{
		{"compression", `{}`, channels.CompressionConfig{Enabled: true}},
		{"compression on", `{}`, channels.CompressionConfig{Enabled: true}},
		{"compression off", `{"off":true}`, channels.CompressionConfig{}},
		{"compression {\n threshold 1KiB\n level 6\n }", `{"threshold":1024,"level":6}`, channels.CompressionConfig{Enabled: true, Threshold: 1024, Level: 6}},
		{"compression on {\n threshold 1\n }", `{"threshold":1}`, channels.CompressionConfig{Enabled: true, Threshold: 1}},
	} {
		h, err := unmarshalTestfile("channels {\n " + tt.input + "\n}")
		if err != nil {
			t.Errorf("%q: %v", tt.input, err)
			continue
		}
		if got, _ := json.Marshal(h.Compression); string(got) != tt.json {
			t.Errorf("%q: JSON %s, want %s", tt.input, got, tt.json)
		}
		if got := h.Compression.config(); got != tt.engine {
			t.Errorf("%q: engine config %+v, want %+v", tt.input, got, tt.engine)
		}
	}
	if got := (*Compression)(nil).config(); got.Enabled {
		t.Error("no compression setting: on")
	}
}

func TestUnmarshalCaddyfileCompressionErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ input, want string }{
		{"compression yes", `unknown argument "yes"`},
		{"compression on off", "wrong argument count"},
		{"compression off {\n level 5\n }", "compression off takes no settings"},
		{"compression {\n level 0\n }", `level "0" must be an integer from 1 (fastest) to 9 (smallest)`},
		{"compression {\n level 10\n }", `level "10" must be an integer from 1`},
		{"compression {\n level fast\n }", `level "fast" must be an integer`},
		{"compression {\n level\n }", "wrong argument count"},
		{"compression {\n threshold 0\n }", `threshold: invalid size "0"`},
		{"compression {\n threshold big\n }", `threshold: invalid size "big"`},
		{"compression {\n threshold 1KiB 2KiB\n }", "wrong argument count"},
		{"compression {\n level 1\n level 2\n }", `compression: duplicate "level"`},
		{"compression {\n window 15\n }", `unknown setting "window" (want threshold or level)`},
		{"compression\n compression off", `duplicate "compression"`},
	} {
		_, err := unmarshalTestfile("channels {\n " + tt.input + "\n}")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %q", tt.input, err, tt.want)
		}
	}
}
