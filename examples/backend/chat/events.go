package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxMessageLen bounds a chat message body, in bytes.
const maxMessageLen = 4000

// handleIn answers the events a joined client pushes. The channel's assigns
// (user from connect, room from join, nick from rename) come with every
// call, so the app keeps no per-socket state.
func (a *App) handleIn(body []byte) (int, any) {
	var req eventRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody("decoding handle_in request: " + err.Error())
	}
	assigns := req.Socket.Assigns
	user, _ := assigns["user"].(string)
	room, _ := assigns["room"].(string)
	nick, _ := assigns["nick"].(string)

	if req.Event == "echo" {
		// Binary in, binary out; JSON in, JSON out.
		if req.Binary != nil {
			return http.StatusOK, eventResponse{Reply: &reply{Status: "ok", Binary: req.Binary}}
		}
		payload, err := objectPayload(req.Payload)
		if err != nil {
			return http.StatusOK, replyError(err.Error())
		}
		return http.StatusOK, eventResponse{Reply: okReply(payload)}
	}
	payload, err := objectPayload(req.Payload)
	if err != nil || req.Binary != nil {
		return http.StatusOK, replyError("payload must be a JSON object")
	}

	switch req.Event {
	case "new_msg", "shout":
		text, err := messageBody(payload)
		if err != nil {
			return http.StatusOK, replyError(err.Error())
		}
		msg := []outMessage{{Event: req.Event, Payload: chatMessage(user, nick, text)}}
		if req.Event == "new_msg" {
			// To everyone in the room, the sender included.
			return http.StatusOK, eventResponse{Broadcast: msg, Reply: okReply(nil)}
		}
		// To everyone in the room but the sender.
		return http.StatusOK, eventResponse{BroadcastFrom: msg, Reply: okReply(nil)}
	case "whoami":
		who := map[string]any{"user": user, "room": room}
		if nick != "" {
			who["nick"] = nick
		}
		return http.StatusOK, eventResponse{Reply: okReply(who)}
	case "rename":
		newNick, _ := payload["nick"].(string)
		newNick = strings.TrimSpace(newNick)
		if newNick == "" || utf8.RuneCountInString(newNick) > maxNameLen {
			return http.StatusOK, replyError(fmt.Sprintf("nick must have 1 to %d characters", maxNameLen))
		}
		// Only "nick" changes; "user" and "room" keep their values.
		return http.StatusOK, eventResponse{
			Assigns: map[string]any{"nick": newNick},
			Reply:   okReply(map[string]any{"nick": newNick}),
		}
	case "bye":
		// The reply comes first, then phx_close; no leave webhook follows.
		return http.StatusOK, eventResponse{Reply: okReply(nil), Stop: &stopChannel{Reason: "bye"}}
	case "ping_me":
		// A push to this socket only, and no reply (Phoenix's :noreply).
		return http.StatusOK, eventResponse{Push: []outMessage{{Event: "pong", Payload: payload}}}
	default:
		return http.StatusOK, replyError("unknown event")
	}
}

// objectPayload decodes a JSON object payload; null or absent is empty.
func objectPayload(raw json.RawMessage) (map[string]any, error) {
	payload := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return payload, nil
	}
	if err := json.Unmarshal(raw, &payload); err != nil || payload == nil {
		return nil, errors.New("payload must be a JSON object")
	}
	return payload, nil
}

// messageBody returns payload.body: a non-empty string of at most
// maxMessageLen bytes.
func messageBody(payload map[string]any) (string, error) {
	text, _ := payload["body"].(string)
	if strings.TrimSpace(text) == "" {
		return "", errors.New("body must be a non-empty string")
	}
	if len(text) > maxMessageLen {
		return "", fmt.Errorf("body is longer than %d bytes", maxMessageLen)
	}
	return text, nil
}

// chatMessage is the payload of a new_msg or shout broadcast.
func chatMessage(user, nick, text string) map[string]any {
	msg := map[string]any{"user": user, "body": text}
	if nick != "" {
		msg["nick"] = nick
	}
	return msg
}

// okReply is an ok reply; a nil response is sent as {}.
func okReply(response map[string]any) *reply {
	if response == nil {
		response = map[string]any{}
	}
	return &reply{Status: "ok", Response: response}
}

// replyError answers the push with an error reply {"reason": reason}.
func replyError(reason string) eventResponse {
	return eventResponse{Reply: &reply{Status: "error", Response: map[string]any{"reason": reason}}}
}
