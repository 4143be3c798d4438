package channels

import (
	"net"
	"sync"
	"time"
)

// The write syscalls of a send queue. A batch of frames leaves in one write
// whatever the connection:
//
//   - A *net.TCPConn or *net.UnixConn gets one vectored write (writev) of
//     the frames themselves: no copy.
//   - Any other connection, a *tls.Conn above all (Caddy hands the
//     handler the *tls.Conn itself when the site serves TLS), would get one
//     Write per frame from net.Buffers, and a *tls.Conn seals every Write
//     into records of its own: one TLS record, and one write syscall, per
//     frame. Such a batch is copied into a pooled buffer of up to
//     copyChunk bytes, cut only between frames, and each buffer is written
//     with one Write, which tls.Conn cuts into full-size records (16 KB of
//     plaintext, smaller while a new connection's record size ramps up).
//     A frame larger than the chunk is written on its own, from its own
//     bytes.
//
// Chunks end between frames so that a close frame gorilla writes on its own
// (1009 for an oversized frame) can only come between two frames.

// clockBase anchors the monotonic clock readings of the send queues:
// time.Since of a time with a monotonic reading reads only that clock.
var clockBase = time.Now()

// monoNow is the monotonic time since clockBase.
func monoNow() time.Duration { return time.Since(clockBase) }

// refreshDeadline sets the write deadline writeTimeout ahead when less than
// half of it remains. Moving the deadline costs more than the write of a
// small batch, so a busy socket moves it about twice per writeTimeout; a
// write still fails between writeTimeout/2 and writeTimeout after it began
// if the peer does not read.
func (q *sendQueue) refreshDeadline() {
	t := monoNow()
	if q.deadline-t < q.writeTimeout/2 {
		q.deadline = t + q.writeTimeout
		q.nc.SetWriteDeadline(clockBase.Add(q.deadline))
	}
}

// copyChunk is the size of the buffers a batch is copied into for
// connections without writev: four full TLS records.
const copyChunk = 64 << 10

// chunkPool holds the copy buffers (*[]byte of capacity copyChunk), shared
// by all sockets so that an idle socket keeps none. A writer holds one only
// while it writes.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, copyChunk)
	return &b
}}

// isVectored reports whether nc takes net.Buffers as one writev.
func isVectored(nc net.Conn) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// write sends a batch of frames, in order.
func (q *sendQueue) write(batch []*Frame) error {
	q.refreshDeadline()
	switch {
	case len(batch) == 1:
		_, err := q.nc.Write(batch[0].wire)
		return err
	case q.vectored:
		return q.writev(batch)
	}
	return writeChunks(q.nc, batch)
}

// writev sends the batch with one vectored write.
func (q *sendQueue) writev(batch []*Frame) error {
	q.bufs = q.bufs[:0]
	for _, f := range batch {
		q.bufs = append(q.bufs, f.wire)
	}
	bufs := q.bufs // WriteTo consumes its receiver
	_, err := bufs.WriteTo(q.nc)
	clear(q.bufs)
	return err
}

// writeChunks sends the batch as few copied chunks of up to copyChunk
// bytes, one Write each; a frame of more than copyChunk bytes is written
// on its own.
func writeChunks(nc net.Conn, batch []*Frame) error {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := (*bp)[:0]
	for _, f := range batch {
		if len(buf)+len(f.wire) > copyChunk && len(buf) > 0 {
			if _, err := nc.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(f.wire) > copyChunk {
			if _, err := nc.Write(f.wire); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, f.wire...)
	}
	if len(buf) == 0 {
		return nil
	}
	_, err := nc.Write(buf)
	return err
}
