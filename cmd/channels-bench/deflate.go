package main

import (
	"context"
	"net"
	"sync/atomic"
)

// wireBytesIn counts the bytes every WebSocket connection of the tool has
// read from the network (handshakes, headers and compressed payloads
// included): what permessage-deflate saves shows here, next to the
// deliveries.
var wireBytesIn atomic.Uint64

// countingConn counts the bytes read from a connection in wireBytesIn.
type countingConn struct{ net.Conn }

// Read implements net.Conn.
func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	wireBytesIn.Add(uint64(n))
	return n, err
}

// countWire makes every WebSocket dial count its bytes read and, with
// deflate, offer permessage-deflate (gorilla then inflates each
// compressed frame as the tool reads it). Call it after newDialer and
// useTLS: it wraps the dial function they set.
func (d *dialer) countWire(deflate bool) {
	d.ws.EnableCompression = deflate
	next := d.ws.NetDialContext
	if next == nil {
		nd := &net.Dialer{Timeout: d.timeout}
		next = nd.DialContext
	}
	d.ws.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c}, nil
	}
}

// addWire reports the bytes read on the wire between two readings of
// wireBytesIn, per delivery.
func (r *report) addWire(before, after uint64, deliveries int64) {
	n := after - before
	r.add("wire_bytes_in", "bytes received on the wire", n, "B")
	if deliveries > 0 {
		r.add("wire_bytes_per_delivery", "wire bytes per delivery", float64(n)/float64(deliveries), "B")
	}
}
