package channels

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordConn is the TCP connection under a TLS server: it keeps what is
// written to it, so that the TLS records on the wire can be counted.
type recordConn struct {
	net.Conn
	mu      sync.Mutex
	writes  int
	written []byte
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.written = append(c.written, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// reset forgets what was written so far (the handshake).
func (c *recordConn) reset() {
	c.mu.Lock()
	c.writes, c.written = 0, nil
	c.mu.Unlock()
}

// records splits what was written into TLS records and returns how many
// there are and how many write calls carried them.
func (c *recordConn) records(t *testing.T) (records, writes int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.written
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("%d bytes left, less than a record header", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			t.Fatalf("record of %d bytes, %d left", n, len(b)-5)
		}
		b = b[5+n:]
		records++
	}
	return records, c.writes
}

// testCert returns a self-signed ECDSA P-256 certificate for 127.0.0.1.
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPair returns both ends of a loopback TLS connection with the
// handshake done, and the TCP connection under the server's end.
func tlsPair(t testing.TB) (server *tls.Conn, under *recordConn, client *tls.Conn) {
	t.Helper()
	sc, pc := tcpPair(t)
	under = &recordConn{Conn: sc}
	server = tls.Server(under, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	client = tls.Client(pc, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificate
	errs := make(chan error, 1)
	go func() { errs <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	under.reset()
	return server, under, client
}

// Over TLS, a batch of frames leaves in a few full-size records rather
// than one record (and one write syscall) per frame, in order and intact:
// many small frames, a frame larger than a copy chunk, and more than a
// chunk in all. This is the connection Caddy hands over on a TLS site.
func TestSendQueueTLSBatchInFewRecords(t *testing.T) {
	server, under, client := tlsPair(t)
	q := newSendQueue(server, time.Minute, 1<<30)
	if q.vectored {
		t.Fatal("a *tls.Conn taken for a writev connection")
	}
	q.setWriteDelay(time.Hour) // one batch: only the close frame ends the delay

	var want []byte
	frames := 0
	send := func(f *Frame) {
		want = append(want, f.Wire()...)
		frames++
		if !q.Send(f) {
			t.Fatalf("frame %d not queued", frames)
		}
	}
	for i := range 1000 {
		send(testFrame(fmt.Sprintf(`[null,null,"room:1","msg",{"i":%d,"p":"%s"}]`, i, strings.Repeat("x", i%90))))
	}
	send(testFrame(strings.Repeat("L", copyChunk+1000))) // on its own
	for i := range 200 {
		send(testFrame(fmt.Sprintf("tail-%d", i)))
	}
	q.Close(CloseGoingAway, "bye")
	want = append(want, closeFrame(CloseGoingAway, "bye").Wire()...)
	frames++

	readExactly(t, client, want)
	records, writes := under.records(t)
	t.Logf("%d frames (%d bytes) in %d TLS records, %d writes", frames, len(want), records, writes)
	if records >= frames/10 {
		t.Fatalf("%d frames took %d TLS records, want fewer than %d", frames, records, frames/10)
	}
	if writes != records {
		t.Fatalf("%d records in %d writes", records, writes)
	}
}

// writeChunks cuts between frames only, keeps frames larger than a chunk
// whole, and fills each chunk up to copyChunk.
func TestWriteChunks(t *testing.T) {
	var c chunkRecorder
	small := testFrame(strings.Repeat("s", 1000))
	big := testFrame(strings.Repeat("B", copyChunk+1))
	var batch []*Frame
	for range 100 {
		batch = append(batch, small)
	}
	batch = append(batch, big, small)
	if err := writeChunks(&c, batch); err != nil {
		t.Fatal(err)
	}
	var want, got []byte
	for _, f := range batch {
		want = append(want, f.Wire()...)
	}
	perChunk := copyChunk / small.Size()
	for i, w := range c.writes {
		got = append(got, w...)
		if len(w) > copyChunk && !bytes.Equal(w, big.Wire()) {
			t.Errorf("write %d: %d bytes, more than a chunk", i, len(w))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("written bytes differ from the frames")
	}
	// 100 small frames fill chunks of perChunk frames, then the big frame
	// on its own, then the last small frame.
	if n := (100+perChunk-1)/perChunk + 2; len(c.writes) != n {
		t.Fatalf("%d writes, want %d", len(c.writes), n)
	}
	if len(c.writes[0]) != perChunk*small.Size() {
		t.Fatalf("first chunk %d bytes, want %d", len(c.writes[0]), perChunk*small.Size())
	}
}

// chunkRecorder is a net.Conn that keeps each Write.
type chunkRecorder struct {
	net.Conn
	writes [][]byte
}

func (c *chunkRecorder) Write(b []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(b))
	return len(b), nil
}
