package natsbroker

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// recordSeeds are valid records of every kind.
func recordSeeds() [][]byte {
	big := bytes.Repeat([]byte{0xff, 0x00}, 300)
	return [][]byte{
		encodeRecord(kindBroadcast, &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`)}, nil),
		encodeRecord(kindBroadcast, &pubsub.Message{Topic: "t", Binary: true, Exclude: math.MaxUint64, Node: "n1", Payload: big}, nil),
		encodeRecord(kindData, &pubsub.Message{Topic: "room:ü 🙂", Event: "e", Payload: []byte(`1`)},
			&histMeta{epoch: "0123abcd", seq: 7, keptFrom: 3, expireAt: 1_700_000_000_000, prev: 41}),
		encodeRecord(kindData, &pubsub.Message{Topic: "t", Event: "e"},
			&histMeta{epoch: "e", seq: 200, keptFrom: 100, prev: 900, markSeq: 140, markStream: 700}),
		encodeRecord(kindMarker, &pubsub.Message{Topic: "a.b*>"}, &histMeta{epoch: "e-_x", seq: 0, keptFrom: 1}),
		encodeRecord(kindMarker, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 9, keptFrom: 10, expireAt: 5, prev: 1 << 40}),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		kind byte
		m    pubsub.Message
		h    histMeta
	}{
		{kindBroadcast, pubsub.Message{Topic: "t", Event: "e", Payload: []byte(`{}`), Node: "n", Exclude: 3}, histMeta{}},
		{kindBroadcast, pubsub.Message{Topic: "t", Binary: true, Payload: []byte{0, 1, 2}}, histMeta{}},
		{kindBroadcast, pubsub.Message{Topic: "only topic"}, histMeta{}},
		{kindData, pubsub.Message{Topic: "t", Event: "e", Payload: []byte("x"), Exclude: math.MaxUint64},
			histMeta{epoch: strings.Repeat("a", maxEpochLen), seq: math.MaxUint64, keptFrom: 1, expireAt: math.MaxInt64, prev: 5, markSeq: 9, markStream: 4}},
		{kindMarker, pubsub.Message{Topic: "t"}, histMeta{epoch: "e", seq: 0, keptFrom: 1}},
	}
	for i, tt := range tests {
		b := encodeRecord(tt.kind, &tt.m, &tt.h)
		kind, m, h, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("%d: decode: %v", i, err)
		}
		want := tt.m
		if tt.kind == kindData {
			want.Position = pubsub.Position{Epoch: tt.h.epoch, Seq: tt.h.seq}
		}
		if kind != tt.kind || m.Topic != want.Topic || m.Event != want.Event || m.Node != want.Node ||
			m.Exclude != want.Exclude || m.Binary != want.Binary || !bytes.Equal(m.Payload, want.Payload) ||
			m.Position != want.Position {
			t.Errorf("%d: decoded kind %d %+v, want %d %+v", i, kind, m, tt.kind, want)
		}
		if tt.kind != kindBroadcast && h != tt.h {
			t.Errorf("%d: history fields %+v, want %+v", i, h, tt.h)
		}
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	valid := encodeRecord(kindData, &pubsub.Message{Topic: "t", Event: "e"}, &histMeta{epoch: "e", seq: 2, keptFrom: 1})
	tests := map[string][]byte{
		"empty":           nil,
		"truncated":       valid[:5],
		"version":         append([]byte{2}, valid[1:]...),
		"kind":            append([]byte{1, 3}, valid[2:]...),
		"flags":           append([]byte{1, 1, 2}, valid[3:]...),
		"empty topic":     {1, 0, 0, 0, 0, 0, 0},
		"overlong varint": {1, 0, 0, 0x81, 0x00, 't', 0, 0, 0},
		"long string":     {1, 0, 0, 9, 't'},
		"seq 0 data":      encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 0, keptFrom: 1}),
		"bad epoch":       encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e:1", seq: 1, keptFrom: 1}),
		"empty epoch":     encodeRecord(kindMarker, &pubsub.Message{Topic: "t"}, &histMeta{keptFrom: 1}),
		"keptFrom 0":      encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 1}),
		"keptFrom > seq":  encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 1, keptFrom: 2}),
		"marker payload":  append(encodeRecord(kindMarker, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", keptFrom: 1}), 'x'),
		"marker fields":   {1, 2, 0, 1, 't', 1, 'e', 0, 0, 1, 'e', 0, 1, 0, 0, 0, 0},
		"mark after seq":  encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 5, keptFrom: 1, prev: 9, markSeq: 5, markStream: 3}),
		"mark after prev": encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 5, keptFrom: 1, prev: 9, markSeq: 2, markStream: 10}),
		"mark half set":   encodeRecord(kindData, &pubsub.Message{Topic: "t"}, &histMeta{epoch: "e", seq: 5, keptFrom: 1, prev: 9, markStream: 3}),
	}
	for name, b := range tests {
		if _, _, _, err := decodeRecord(b); !errors.Is(err, errRecord) {
			t.Errorf("%s: decode = %v, want errRecord", name, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, m, h, err := decodeRecord(b)
		if err != nil {
			return
		}
		var hp *histMeta
		if kind != kindBroadcast {
			hp = &h
		}
		if again := encodeRecord(kind, m, hp); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %q as %q", b, again)
		}
		if kind == kindData {
			if _, err := pubsub.ParsePosition(m.Position.String()); err != nil {
				t.Fatalf("position %v does not parse: %v", m.Position, err)
			}
		}
	})
}

// presenceSeeds are valid presence records of every kind.
func presenceSeeds() [][]byte {
	return [][]byte{
		encodePresence(&presRecord{kind: presEntry, topic: "room:a", id: "r1", key: "alice", node: "n1", owner: "o1", meta: []byte(`{"s":1}`)}),
		encodePresence(&presRecord{kind: presEntry, topic: "ü 🙂", id: "id with spaces", owner: "o", meta: []byte{0, 0xff}}),
		encodePresence(&presRecord{kind: presTombstone, topic: "t", id: "i", owner: "o"}),
		encodePresence(&presRecord{kind: presAlive, owner: "0123456789abcdef"}),
		encodePresence(&presRecord{kind: presClosed, owner: "o"}),
		encodePresence(&presRecord{kind: presClaimed, owner: "o", node: "other"}),
	}
}

func TestPresenceRecordRoundTrip(t *testing.T) {
	for i, b := range presenceSeeds() {
		r, err := decodePresence(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if again := encodePresence(&r); !bytes.Equal(again, b) {
			t.Errorf("%d: re-encoded %q as %q", i, b, again)
		}
	}
	bad := map[string][]byte{
		"empty":           nil,
		"version":         {2, presAlive, 0, 0, 0, 0, 1, 'o'},
		"kind":            {1, 9, 0, 0, 0, 0, 1, 'o'},
		"entry no id":     encodePresence(&presRecord{kind: presEntry, topic: "t", owner: "o"}),
		"alive no owner":  encodePresence(&presRecord{kind: presAlive}),
		"alive with meta": encodePresence(&presRecord{kind: presAlive, owner: "o", meta: []byte("x")}),
		"claim no node":   encodePresence(&presRecord{kind: presClaimed, owner: "o"}),
		"tomb with key":   encodePresence(&presRecord{kind: presTombstone, topic: "t", id: "i", key: "k", owner: "o"}),
		"truncated":       {1, presEntry, 5, 'a'},
	}
	for name, b := range bad {
		if _, err := decodePresence(b); !errors.Is(err, errRecord) {
			t.Errorf("%s: decode = %v, want errRecord", name, err)
		}
	}
}

func FuzzDecodePresence(f *testing.F) {
	for _, s := range presenceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodePresence(b)
		if err != nil {
			return
		}
		if again := encodePresence(&r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %q as %q", b, again)
		}
	})
}
