package chat

import "encoding/json"

// socketInfo is the "socket" object that every webhook request carries. For
// join, handle_in and leave, Assigns are the channel's assigns: what connect
// returned, merged with what join and handle_in returned since.
type socketInfo struct {
	ID        *string        `json:"id"`
	Transport string         `json:"transport"`
	Vsn       string         `json:"vsn"`
	RemoteIP  string         `json:"remote_ip"`
	Assigns   map[string]any `json:"assigns"`
}

// connectRequest is the body of a connect call. The forwarded "headers" are
// not used by this app, so they are not decoded.
type connectRequest struct {
	Socket    socketInfo     `json:"socket"`
	Params    map[string]any `json:"params"`
	AuthToken *string        `json:"auth_token"`
}

// joinRequest is the body of a join call; Payload is the client's join params.
type joinRequest struct {
	Socket  socketInfo      `json:"socket"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	JoinRef *string         `json:"join_ref"`
}

// eventRequest is the body of a handle_in call. A binary push has a null
// Payload and its bytes in Binary (base64 on the wire).
type eventRequest struct {
	Socket  socketInfo      `json:"socket"`
	Topic   string          `json:"topic"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Binary  []byte          `json:"binary"`
	Ref     *string         `json:"ref"`
	JoinRef *string         `json:"join_ref"`
}

// leaveRequest is the body of a leave notification.
type leaveRequest struct {
	Socket socketInfo `json:"socket"`
	Topic  string     `json:"topic"`
	Reason string     `json:"reason"`
}

// connectResponse answers a connect call.
type connectResponse struct {
	Status  string         `json:"status"`
	ID      string         `json:"id,omitempty"`
	Assigns map[string]any `json:"assigns,omitempty"`
}

// joinResponse answers a join call. An empty Status means "ok".
type joinResponse struct {
	Status   string         `json:"status,omitempty"`
	Response any            `json:"response,omitempty"`
	Assigns  map[string]any `json:"assigns,omitempty"`
}

// reply is the phx_reply to the client's push: Response or Binary.
type reply struct {
	Status   string `json:"status"`
	Response any    `json:"response,omitempty"`
	Binary   []byte `json:"binary,omitempty"`
}

// outMessage is one broadcast, broadcast_from or push item: Payload or Binary.
type outMessage struct {
	Event   string `json:"event"`
	Payload any    `json:"payload,omitempty"`
	Binary  []byte `json:"binary,omitempty"`
}

// stopChannel asks the gateway to close the channel (phx_close).
type stopChannel struct {
	Reason string `json:"reason"`
}

// eventResponse answers a handle_in call. The gateway applies broadcast,
// broadcast_from, push, then reply, then stop; a nil Reply is a noreply.
type eventResponse struct {
	Broadcast     []outMessage   `json:"broadcast,omitempty"`
	BroadcastFrom []outMessage   `json:"broadcast_from,omitempty"`
	Push          []outMessage   `json:"push,omitempty"`
	Assigns       map[string]any `json:"assigns,omitempty"`
	Reply         *reply         `json:"reply,omitempty"`
	Stop          *stopChannel   `json:"stop,omitempty"`
}
