package channels

// WebSocket close codes the server sends (RFC 6455 §7.4). None of them is
// 1000: phoenix.js up to 1.8.15 does not reconnect after a 1000 close, and
// every server-initiated close here expects the client back.
const (
	// CloseGoingAway (1001) ends a socket the client should reconnect:
	// idle timeout, disconnect by socket id, shutdown, removed config.
	CloseGoingAway = 1001
	// CloseInvalidPayload (1007) answers a text frame that is not UTF-8.
	CloseInvalidPayload = 1007
	// CloseMessageTooBig (1009) answers a frame above max_frame_size.
	CloseMessageTooBig = 1009
	// CloseInternalError (1011) answers a frame that is not a valid
	// message, as Phoenix does when its socket process crashes on it.
	CloseInternalError = 1011
	// CloseSlowConsumer (1013, "try again later") disconnects a socket
	// whose outbound queue exceeded max_queue_size.
	CloseSlowConsumer = 1013
	// ClosePolicyViolation (1008) disconnects a client that keeps pushing
	// at several times its message limit (a flood).
	ClosePolicyViolation = 1008
	// CloseTokenExpired (3000, "Unauthorized" in the IANA registry of
	// WebSocket close codes) ends a socket whose connect token expired;
	// phoenix.js reconnects, with fresh params when params is a function.
	CloseTokenExpired = 3000
)
