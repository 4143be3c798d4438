package channels

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkWriteBatch writes batches of broadcast-sized frames (90 bytes
// on the wire) over a real loopback connection, plain TCP and TLS, the
// way the send queue does (writev, or copied chunks on TLS) and one write
// per frame (what net.Buffers does on a *tls.Conn: one TLS record each).
// ns/op is per frame; the peer reads on its own goroutine.
func BenchmarkWriteBatch(b *testing.B) {
	frame := testFrame(`[null,null,"bench:load","msg",{"t":1765000000000000000,"s":123,"p":"xxxxxxxxxxxxxxxx"}]`)
	for _, tc := range []struct {
		name string
		tls  bool
		each bool
	}{
		{"tcp/writev", false, false},
		{"tcp/each", false, true},
		{"tls/chunks", true, false},
		{"tls/each", true, true},
	} {
		for _, n := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/frames=%d", tc.name, n), func(b *testing.B) {
				var nc, peer net.Conn
				if tc.tls {
					server, _, client := tlsPair(b)
					nc, peer = server, client
				} else {
					server, client := tcpPair(b)
					nc, peer = server, client
				}
				go io.Copy(io.Discard, peer)
				q := newSendQueue(nc, time.Minute, 1<<30)
				batch := make([]*Frame, n)
				for i := range batch {
					batch[i] = frame
				}
				b.SetBytes(int64(frame.Size()))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += n {
					var err error
					if tc.each {
						for _, f := range batch {
							if _, err = nc.Write(f.wire); err != nil {
								break
							}
						}
					} else {
						err = q.write(batch)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
