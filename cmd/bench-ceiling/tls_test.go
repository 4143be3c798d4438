package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Over wss with the self-signed certificate, a batch of broadcasts queued
// while the writer is busy arrives complete and in order (writeBatch
// coalesces them into one TLS write).
func TestTLSSelfSigned(t *testing.T) {
	conf, err := serverTLS("", "", true)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer()
	mux := http.NewServeMux()
	mux.HandleFunc("/socket/websocket", s.serveWS)
	mux.HandleFunc("/socket/api/broadcast", s.serveBroadcast)
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = conf
	srv.StartTLS()
	t.Cleanup(srv.Close)

	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https")+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &testClient{t: t, conn: conn}
	c.send(`["1","1","room:tls","phx_join",{}]`)
	c.expect(`["1","1","room:tls","phx_reply",{"response":{},"status":"ok"}]`)

	var body strings.Builder
	var want []string
	body.WriteByte('[')
	for i := range 200 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"topic":"room:tls","event":"msg","payload":{"n":%d,"p":"%s"}}`, i, strings.Repeat("x", 100))
		want = append(want, fmt.Sprintf(`[null,null,"room:tls","msg",{"n":%d,"p":"%s"}]`, i, strings.Repeat("x", 100)))
	}
	body.WriteByte(']')
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/socket/api/broadcast", strings.NewReader(body.String()))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("broadcast: HTTP %d", resp.StatusCode)
	}
	c.expect(want...)
}

func TestServerTLSFlags(t *testing.T) {
	if conf, err := serverTLS("", "", false); conf != nil || err != nil {
		t.Fatalf("no flags: %v, %v; want plain HTTP", conf, err)
	}
	if _, err := serverTLS("a.pem", "", true); err == nil {
		t.Fatal("-tls-self-signed with -tls-cert: no error")
	}
	if _, err := serverTLS("missing.pem", "missing.key", false); err == nil {
		t.Fatal("missing certificate files: no error")
	}
}
