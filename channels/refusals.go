package channels

// Refusal is why the edge refused a client something: a connect, a join,
// a push, or the socket itself. Stats counts each kind.
type Refusal int

// Refusal kinds.
const (
	// RefusedAuth: a connect without a valid token (403).
	RefusedAuth Refusal = iota
	// RefusedTokenExpired: a socket closed when its token expired.
	RefusedTokenExpired
	// RefusedConnectRate: a connect over limit connects per ip (429).
	RefusedConnectRate
	// RefusedSocketsPerIP: a connect over max_sockets_per_ip (429).
	RefusedSocketsPerIP
	// RefusedSocketsPerID: a connect over max_sockets_per_id (429).
	RefusedSocketsPerID
	// RefusedMessageRate: a push over limit messages.
	RefusedMessageRate
	// RefusedJoinRate: a join over limit joins.
	RefusedJoinRate
	// RefusedEventRate: a push over its handle_in rule's limit.
	RefusedEventRate
	// RefusedFlood: a socket closed (1008) for pushing or joining at
	// several times its limit.
	RefusedFlood
	// RefusedJoinToken: a join whose join token (join jwt) was missing or
	// not accepted.
	RefusedJoinToken

	// NumRefusals is the number of Refusal kinds.
	NumRefusals
)

// String returns the kind's metric label.
func (r Refusal) String() string {
	switch r {
	case RefusedAuth:
		return "auth"
	case RefusedTokenExpired:
		return "token_expired"
	case RefusedConnectRate:
		return "connect_rate"
	case RefusedSocketsPerIP:
		return "sockets_per_ip"
	case RefusedSocketsPerID:
		return "sockets_per_id"
	case RefusedMessageRate:
		return "message_rate"
	case RefusedJoinRate:
		return "join_rate"
	case RefusedJoinToken:
		return "join_token"
	case RefusedEventRate:
		return "event_rate"
	case RefusedFlood:
		return "flood"
	}
	return "unknown"
}
