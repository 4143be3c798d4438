package chat

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// connect authenticates a socket: params.token (or the phoenix.js
// authToken) must be a token from POST /login. The socket is named
// "user_socket:<name>", so the app can disconnect a user's sockets, and
// gets the assign "user".
func (a *App) connect(body []byte) (int, any) {
	var req connectRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody("decoding connect request: " + err.Error())
	}
	token, _ := req.Params["token"].(string)
	if token == "" && req.AuthToken != nil {
		token = *req.AuthToken
	}
	name, err := a.verifyToken(token)
	if err != nil {
		a.logf("connect: refused %s: %v", req.Socket.RemoteIP, err)
		return http.StatusForbidden, connectResponse{Status: "error"}
	}
	a.logf("connect: %s from %s", name, req.Socket.RemoteIP)
	return http.StatusOK, connectResponse{
		Status:  "ok",
		ID:      "user_socket:" + name,
		Assigns: map[string]any{"user": name},
	}
}

// join authorizes a join: every "room:<name>" is open to signed-in users,
// except "room:private-<name>", which is open to its members only. The
// channel gets the assign "room" (the subtopic).
func (a *App) join(body []byte) (int, any) {
	var req joinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody("decoding join request: " + err.Error())
	}
	user, _ := req.Socket.Assigns["user"].(string)
	if user == "" {
		return http.StatusOK, joinError("unauthorized")
	}
	room, ok := strings.CutPrefix(req.Topic, "room:")
	if !ok || room == "" {
		return http.StatusOK, joinError("unknown topic")
	}
	if strings.HasPrefix(room, "private-") && !slices.Contains(a.members[room], user) {
		a.logf("join: %s refused %s: not a member", user, req.Topic)
		return http.StatusOK, joinError("not a member")
	}
	a.logf("join: %s joined %s", user, req.Topic)
	return http.StatusOK, joinResponse{
		Response: map[string]any{"joined": req.Topic},
		Assigns:  map[string]any{"room": room},
	}
}

// joinError refuses a join with {"reason": reason}.
func joinError(reason string) joinResponse {
	return joinResponse{Status: "error", Response: map[string]any{"reason": reason}}
}

// leave records a leave notification. The gateway expects any 2xx and does
// not read the body.
func (a *App) leave(body []byte) (int, any) {
	var req leaveRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, errorBody("decoding leave request: " + err.Error())
	}
	ev := LeaveEvent{Topic: req.Topic, Reason: req.Reason}
	if req.Socket.ID != nil {
		ev.SocketID = *req.Socket.ID
	}
	ev.User, _ = req.Socket.Assigns["user"].(string)
	a.mu.Lock()
	a.leaves = append(a.leaves, ev)
	a.mu.Unlock()
	a.logf("leave: %s left %s (%s)", ev.User, ev.Topic, ev.Reason)
	return http.StatusNoContent, nil
}
