package channels

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzH1Response feeds arbitrary bytes to the lean client's response
// parser and body readers: they must not panic, must stay within the body
// cap, and must report only final statuses.
func FuzzH1Response(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nbody to the end",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"garbage\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	const limit = 1 << 12
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), h1ReadBufferSize)
		h, err := readH1Head(br)
		if err != nil {
			return
		}
		if h.status < 200 || h.status > 999 {
			t.Fatalf("final status %d", h.status)
		}
		if h.chunked && h.length != -1 {
			t.Fatalf("chunked answer with length %d", h.length)
		}
		r, declared, _ := h1Body(br, &h)
		if r == nil {
			return
		}
		body, err := readCappedBody(r, declared, limit)
		if err == nil && (len(body) > limit || (declared >= 0 && int64(len(body)) != declared)) {
			t.Fatalf("body of %d bytes, declared %d", len(body), declared)
		}
	})
}
