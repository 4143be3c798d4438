// Package channels is a Phoenix Channels protocol engine: serializers for the
// V1 and V2 wire formats, sockets, per-socket channel state, a topic router
// with declarative rules, and two transports behind the Transport
// interface: WebSocket and LongPoll (see ARCHITECTURE.md for a map).
//
// It has no Caddy imports and can be embedded in any net/http server: build
// a Config, create a Hub with NewHub, and hand {path}/websocket requests to
// Hub.ServeWebSocket and {path}/longpoll requests to Hub.ServeLongPoll.
//
// Key invariants (read these before changing the engine):
//
//   - One reader per socket: every inbound frame of a socket is handled on the
//     goroutine that runs its read loop (for LongPoll: one POST at a time,
//     under the session's lock), so per-socket channel state needs no
//     lock on that path.
//   - One writer per socket: outbound frames are only queued (Transport.Send
//     never blocks); a per-socket writer drains the queue, coalescing every
//     queued frame into one vectored write. A socket whose queue exceeds its
//     byte budget is disconnected instead of growing memory.
//   - Frames are immutable once built: a broadcast is encoded once per
//     serializer and the same *Frame is queued on every subscriber.
//   - No lock is held while writing to a network connection.
//   - Lock order: broker topic lock -> topic shard -> socket send queue, and
//     broker topic lock -> Hub.mu (a "disconnect" delivery looks up sockets
//     by id). Hub.mu is released before anything else is locked. The broker
//     delivers under its own lock, so the hub never calls the broker while
//     it holds a topic shard lock or Hub.mu.
package channels
