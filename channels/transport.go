package channels

// Transport carries one socket's outbound frames to its client. The
// engine (Socket, its channels, the Hub and its fan-out) sees a socket's
// connection only through this interface; transport_websocket*.go and
// transport_longpoll*.go implement it. Frames are encoded once per
// serializer and shared: a transport keeps references to them, never
// copies (Frame.Payload is the Phoenix message, Frame.Wire the same bytes
// with a WebSocket header in front).
//
// Every method is safe for concurrent use and never blocks on the client.
type Transport interface {
	// Name is the transport's name, as webhooks and metrics report it:
	// "websocket" or "longpoll".
	Name() string
	// Send queues f after the frames queued before it. It returns false
	// when f was not queued: the transport is closing, or the client fell
	// more than max_queue_size behind, which closes it.
	Send(f *Frame) bool
	// SendNow is Send for a reply made on the socket's inbound path; a
	// transport may write it at once when nothing else is queued.
	SendNow(f *Frame) bool
	// Close ends the transport once the frames queued before it are out,
	// telling the client code and reason where the transport can.
	Close(code int, reason string)
	// Abort ends the transport now, dropping what is queued.
	Abort()
}

// Name implements Transport.
func (q *sendQueue) Name() string { return "websocket" }

var _ Transport = (*sendQueue)(nil)
