package redisbroker

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	msgs := []*pubsub.Message{
		{},
		{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"body":"hi"}`), Node: "n1"},
		{Topic: "t", Payload: []byte{0, 0xff, 1}, Binary: true, Exclude: 1<<64 - 1},
		{Topic: "ü", Event: strings.Repeat("e", 300), Payload: bytes.Repeat([]byte("x"), 70000), Exclude: 128},
	}
	positions := []string{"", "ab12:0", "A-b_9:18446744073709551615"}
	for i, m := range msgs {
		env := appendEnvelope(nil, m)
		if len(env) != envelopeSize(m) {
			t.Errorf("message %d: envelopeSize %d, encoded %d bytes", i, envelopeSize(m), len(env))
		}
		for _, pos := range positions {
			got, err := decodeEnvelope(string(env) + pos)
			if err != nil {
				t.Fatalf("message %d at %q: %v", i, pos, err)
			}
			if got.Topic != m.Topic || got.Event != m.Event || !bytes.Equal(got.Payload, m.Payload) ||
				got.Binary != m.Binary || got.Exclude != m.Exclude || got.Node != m.Node || got.Position.String() != pos {
				t.Errorf("message %d at %q: decoded %+v", i, pos, got)
			}
		}
	}
}

func TestDecodeEnvelopeRejects(t *testing.T) {
	good := string(appendEnvelope(nil, &pubsub.Message{Topic: "t", Event: "e", Payload: []byte("p")}))
	bad := map[string]string{
		"empty":             "",
		"version only":      "\xc1",
		"wrong version":     "\xc2" + good[1:],
		"unknown flag":      good[:1] + "\x02" + good[2:],
		"truncated":         good[:len(good)-1],
		"length too long":   "\xc1\x00\x05t",
		"non-minimal":       "\xc1\x00\x81\x00t\x01e\x00\x00\x01p",
		"varint overflow":   "\xc1\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
		"bad position":      good + "ab:05",
		"position no colon": good + "abc",
	}
	for name, s := range bad {
		if m, err := decodeEnvelope(s); err == nil || !errors.Is(err, errMalformed) {
			t.Errorf("%s: decoded %+v, %v; want errMalformed", name, m, err)
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	entries := []pubsub.PresenceEntry{
		{ID: "r1"},
		{ID: "r2", Key: "alice", Meta: []byte(`{"online_at":1}`), Node: "n1"},
		{ID: "x", Key: strings.Repeat("k", 200), Meta: []byte{0, 0xff}, Node: "ü"},
	}
	for _, e := range entries {
		got, err := decodeEntry(e.ID, string(appendEntry(nil, e)))
		if err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		if got.ID != e.ID || got.Key != e.Key || !bytes.Equal(got.Meta, e.Meta) || got.Node != e.Node {
			t.Errorf("%s: decoded %+v", e.ID, got)
		}
	}
	for _, s := range []string{"", "\xd2\x00\x00\x00", "\xd1\x00\x00", "\xd1\x00\x00\x00x", "\xd1\x05ab"} {
		if _, err := decodeEntry("id", s); !errors.Is(err, errMalformed) {
			t.Errorf("decodeEntry(%q) = %v, want errMalformed", s, err)
		}
	}
}

func TestStreamSeq(t *testing.T) {
	if n, err := streamSeq("0-42"); err != nil || n != 42 {
		t.Errorf("streamSeq(0-42) = %d, %v", n, err)
	}
	for _, s := range []string{"1-42", "0-", "0-x", "42"} {
		if _, err := streamSeq(s); err == nil {
			t.Errorf("streamSeq(%q) accepted", s)
		}
	}
}

// FuzzDecodeEnvelope checks that the decoder never panics, rejects with
// errMalformed, and accepts only canonical encodings.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, &pubsub.Message{Topic: "room:lobby", Event: "new_msg", Payload: []byte(`{"a":1}`), Node: "n"}))
	f.Add(append(appendEnvelope(nil, &pubsub.Message{Topic: "t", Binary: true, Payload: []byte{0}, Exclude: 300}), "ep:7"...))
	f.Add([]byte("\xc1\x00\x81\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeEnvelope(string(b))
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		again := append(appendEnvelope(nil, m), m.Position.String()...)
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes as %q, not %q", m, again, b)
		}
	})
}

// FuzzDecodeEntry checks the presence entry decoder like FuzzDecodeEnvelope.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(appendEntry(nil, pubsub.PresenceEntry{Key: "alice", Meta: []byte(`{"x":1}`), Node: "n1"}))
	f.Add(appendEntry(nil, pubsub.PresenceEntry{}))
	f.Add([]byte("\xd1\x80\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry("id", string(b))
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if again := appendEntry(nil, e); !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v re-encodes as %q, not %q", e, again, b)
		}
	})
}
