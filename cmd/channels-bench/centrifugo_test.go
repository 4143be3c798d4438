package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestParseProtocol(t *testing.T) {
	for in, want := range map[string]protocol{"phoenix": phoenixV2, "centrifugo": centrifugoJSON} {
		got, err := parseProtocol(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("parseProtocol(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseProtocol("socket.io"); err == nil {
		t.Error("parseProtocol(socket.io) succeeded")
	}
}

func TestCentrifugoDefaults(t *testing.T) {
	cfg, err := parseConfig([]string{"fanout", "-proto", "centrifugo"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.url != defaultURL[centrifugoJSON] || cfg.api != defaultAPI[centrifugoJSON] {
		t.Errorf("url %q api %q: want the Centrifugo defaults", cfg.url, cfg.api)
	}
	u, err := centrifugoJSON.wsURL("http://127.0.0.1:8094/connection/websocket")
	if err != nil || u.String() != "ws://127.0.0.1:8094/connection/websocket" {
		t.Errorf("wsURL = %v, %v; want the path unchanged, no vsn", u, err)
	}
	cfg, err = parseConfig([]string{"fanout"}, nil)
	if err != nil || cfg.url != defaultURL[phoenixV2] || cfg.protocol != phoenixV2 {
		t.Errorf("phoenix defaults: %+v, %v", cfg, err)
	}
}

func TestCentrifugoCommands(t *testing.T) {
	ch := jsonString("bench:load")
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"rpc", appendRPC(nil, 7, jsonString("echo"), 1, 2, 0), `{"id":7,"rpc":{"method":"echo","data":{"t":1,"s":2,"p":""}}}`},
		{"client publish", appendClientPublish(nil, 8, ch, 1, 2, 0), `{"id":8,"publish":{"channel":"bench:load","data":{"t":1,"s":2,"p":""}}}`},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	one := centrifugoAPIBody(nil, ch, 5, 1, 64)
	var p struct {
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(one, &p); err != nil || p.Channel != "bench:load" || len(p.Data) != 64 {
		t.Errorf("publish body %s: %+v, %v", one, p, err)
	}
	if f := scanFields(one); !f.HasS || f.S != 5 || !f.HasT {
		t.Errorf("publish body %s: fields %+v", one, f)
	}
	batch := centrifugoAPIBody(nil, ch, 10, 3, 64)
	var b struct {
		Commands []struct {
			Publish struct {
				Channel string `json:"channel"`
				Data    struct {
					S int64 `json:"s"`
				} `json:"data"`
			} `json:"publish"`
		} `json:"commands"`
	}
	if err := json.Unmarshal(batch, &b); err != nil || len(b.Commands) != 3 {
		t.Fatalf("batch body %s: %v", batch, err)
	}
	for k, c := range b.Commands {
		if c.Publish.Channel != "bench:load" || c.Publish.Data.S != int64(10+k) {
			t.Errorf("batch command %d: %+v", k, c)
		}
	}
	warm := centrifugoAPIBody(nil, ch, -1, 2, 0)
	if bytes.Count(warm, []byte(`"s":-1`)) != 2 {
		t.Errorf("warm-up batch %s: want s=-1 twice", warm)
	}
}

func TestCentrifugoReplyStatus(t *testing.T) {
	tests := []struct {
		msg       string
		ok, match bool
		err       bool
	}{
		{`{"id":3,"subscribe":{}}`, true, true, false},
		{`{"id":3,"error":{"code":102,"message":"unknown channel"}}`, false, true, false},
		{`{"id":4,"subscribe":{}}`, false, false, false},
		{`{"push":{"channel":"c","pub":{"data":{}}}}`, false, false, false},
		{`{"id":`, false, false, true},
	}
	for _, tt := range tests {
		ok, match, err := centrifugoReplyStatus([]byte(tt.msg), "3")
		if ok != tt.ok || match != tt.match || (err != nil) != tt.err {
			t.Errorf("centrifugoReplyStatus(%s) = %v, %v, %v", tt.msg, ok, match, err)
		}
	}
	if !isCentrifugoOKReply([]byte(`{"id":9,"rpc":{}}`)) || isCentrifugoOKReply([]byte(`{"id":9,"error":{"code":1}}`)) ||
		isCentrifugoOKReply([]byte(`{"push":{}}`)) || isCentrifugoOKReply([]byte(`nope`)) {
		t.Error("isCentrifugoOKReply misclassifies")
	}
}

func TestCentrifugoFrameSplit(t *testing.T) {
	frame := []byte("{\"push\":{\"pub\":{\"data\":{\"t\":1,\"s\":0}}}}\n{}\n{\"push\":{\"pub\":{\"data\":{\"t\":2,\"s\":1}}}}")
	var seqs []int64
	for b := frame; len(b) > 0; {
		var line []byte
		line, b = splitLine(b)
		if isCentrifugoPing(line) {
			continue
		}
		seqs = append(seqs, scanFields(line).S)
	}
	if len(seqs) != 2 || seqs[0] != 0 || seqs[1] != 1 {
		t.Errorf("messages %v, want seq 0 and 1", seqs)
	}
	if !isCentrifugoPing([]byte(" {} ")) || isCentrifugoPing([]byte(`{"id":1}`)) || isCentrifugoPing(nil) {
		t.Error("isCentrifugoPing misclassifies")
	}
}

// FuzzCentrifugoFrame checks that splitting a frame into messages never
// panics, loses no byte but the separators, and that every message can be
// classified without panicking.
func FuzzCentrifugoFrame(f *testing.F) {
	f.Add([]byte("{\"push\":{\"channel\":\"bench:load\",\"pub\":{\"data\":{\"t\":1,\"s\":2}}}}\n{}"))
	f.Add([]byte(`{"id":1,"connect":{"client":"x","version":"6","ping":25,"pong":true}}`))
	f.Add([]byte("{\"id\":2,\"error\":{\"code\":102,\"message\":\"unknown channel\"}}\n\n"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var parts [][]byte
		for b := frame; len(b) > 0; {
			var line []byte
			line, b = splitLine(b)
			parts = append(parts, line)
			_ = isCentrifugoPing(line)
			_, _, _ = centrifugoReplyStatus(line, "1")
			_ = isCentrifugoOKReply(line)
			_ = scanFields(line)
		}
		joined := bytes.Join(parts, []byte{'\n'})
		if !bytes.HasPrefix(frame, joined) || len(frame)-len(joined) > 1 {
			t.Errorf("split %q into %q", frame, parts)
		}
	})
}
