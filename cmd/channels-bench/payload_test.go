package main

import (
	"encoding/json"
	"testing"
)

func TestAppendPayload(t *testing.T) {
	tests := []struct {
		t, s int64
		size int
		want string
	}{
		{1, 2, 0, `{"t":1,"s":2,"p":""}`},
		{1, 2, 20, `{"t":1,"s":2,"p":""}`},
		{1, 2, 24, `{"t":1,"s":2,"p":"xxxx"}`},
		{-5, 10, 27, `{"t":-5,"s":10,"p":"xxxxx"}`},
	}
	for _, tt := range tests {
		got := string(appendPayload(nil, tt.t, tt.s, tt.size))
		if got != tt.want {
			t.Errorf("appendPayload(%d, %d, %d) = %s, want %s", tt.t, tt.s, tt.size, got, tt.want)
		}
	}
	// Padding beyond one chunk.
	big := appendPayload([]byte("prefix"), 1700000000000000000, 99, 10000)
	if len(big) != len("prefix")+10000 || !json.Valid(big[len("prefix"):]) {
		t.Errorf("10000-byte payload: length %d, valid %v", len(big)-len("prefix"), json.Valid(big[len("prefix"):]))
	}
}

func TestAppendPushAndAPIMessage(t *testing.T) {
	topic, event := jsonString(`room:"a"`), jsonString("msg")
	push := string(appendPush(nil, "3", 17, topic, event, 5, 6, 0))
	if want := `["3","17","room:\"a\"","msg",{"t":5,"s":6,"p":""}]`; push != want {
		t.Errorf("push = %s, want %s", push, want)
	}
	msg := string(appendAPIMessage(nil, topic, event, 5, 6, 0))
	if want := `{"topic":"room:\"a\"","event":"msg","payload":{"t":5,"s":6,"p":""}}`; msg != want {
		t.Errorf("api message = %s, want %s", msg, want)
	}
	if f := scanFields([]byte(push)); f != (fields{T: 5, S: 6, HasT: true, HasS: true}) {
		t.Errorf("scan of the push = %+v", f)
	}
}
