package channels

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzDecodeBatch: any POST body decodes or errors, never panics; every
// returned message is within max_frame_size, at most MaxBatchLines are
// returned, and a JSON line comes back unchanged.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`["1","1","room:lobby","phx_join",{}]`), true)
	f.Add([]byte("[\"1\",\"2\",\"r\",\"e\",{}]\r\n\nAAEBCgMxNHJvb206bG9iYnliaW4BAgM=\n"), true)
	f.Add([]byte("!!!\n[\n"), true)
	f.Add([]byte(strings.Repeat("[]\n", 120)), true)
	f.Add([]byte(`{"topic":"t","event":"e","payload":{},"ref":"1"}`), false)
	f.Add([]byte(""), false)
	f.Add([]byte("QUJD\nQUJDRA\nQUJDRA==="), true)
	const maxFrame = 64
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		lines, ignored, err := decodeBatch(body, ndjson, MaxBatchLines, maxFrame)
		if err != nil {
			if lines != nil {
				t.Fatalf("lines %v with error %v", lines, err)
			}
			return
		}
		if len(lines) == 0 || len(lines) > MaxBatchLines || ignored < 0 {
			t.Fatalf("%d lines, %d ignored", len(lines), ignored)
		}
		for _, l := range lines {
			if int64(len(l.data)) > maxFrame {
				t.Fatalf("line of %d bytes over max_frame_size", len(l.data))
			}
			if ndjson && !l.binary && (len(l.data) == 0 || l.data[0] != '[' || !bytes.Contains(body, l.data)) {
				t.Fatalf("text line %q not taken from the body", l.data)
			}
			if l.binary {
				// The decoder skips CRs inside a line.
				flat := bytes.ReplaceAll(body, []byte("\r"), nil)
				if re := base64.StdEncoding.EncodeToString(l.data); !bytes.Contains(flat, []byte(strings.TrimRight(re, "="))) {
					t.Fatalf("binary line %x does not come from the body", l.data)
				}
			}
		}
	})
}

// FuzzVerifyToken: no token but the ones signToken made with the same key
// verifies, and verifying never panics.
func FuzzVerifyToken(f *testing.F) {
	key := []byte("fuzz key")
	good := signToken(key, "a81d438b1920f474", "53d8668c52e351334541987efbe99c82")
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add("a.b.c")
	f.Add("..")
	f.Add("A81D.53d8." + strings.Repeat("x", 43))
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		node, session, err := verifyToken(key, tok)
		if err != nil {
			return
		}
		if tok != signToken(key, node, session) {
			t.Fatalf("%q verified as %s/%s but is not what signToken makes", tok, node, session)
		}
		if _, _, err := verifyToken([]byte("another key"), tok); err == nil {
			t.Fatalf("%q verified with another key", tok)
		}
	})
}
