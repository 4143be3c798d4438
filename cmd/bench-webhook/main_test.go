package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEchoRepliesWithThePayload(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"topic":"t","event":"echo","payload":{"t":1,"s":2}}`, `{"reply":{"status":"ok","response":{"t":1,"s":2}}}`},
		{`{"topic":"t","event":"echo","payload":null,"binary":"AA=="}`, `{"reply":{"status":"ok","response":{}}}`},
	} {
		rec := httptest.NewRecorder()
		echo(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body)))
		if rec.Code != 200 || rec.Body.String() != tt.want {
			t.Fatalf("%s -> %d %s, want %s", tt.body, rec.Code, rec.Body, tt.want)
		}
	}
	rec := httptest.NewRecorder()
	echo(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`not json`)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("garbage -> %d, want 400", rec.Code)
	}
}

func TestCentrifugoRPCRepliesWithTheData(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"client":"c","transport":"websocket","method":"echo","data":{"t":1,"s":2}}`, `{"result":{"data":{"t":1,"s":2}}}`},
		{`{"client":"c","method":"echo"}`, `{"result":{}}`},
	} {
		rec := httptest.NewRecorder()
		centrifugoRPC(rec, httptest.NewRequest(http.MethodPost, "/centrifugo/rpc", strings.NewReader(tt.body)))
		if rec.Code != 200 || rec.Body.String() != tt.want {
			t.Fatalf("%s -> %d %s, want %s", tt.body, rec.Code, rec.Body, tt.want)
		}
	}
	rec := httptest.NewRecorder()
	centrifugoRPC(rec, httptest.NewRequest(http.MethodPost, "/centrifugo/rpc", strings.NewReader(`[`)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("garbage -> %d, want 400", rec.Code)
	}
}
