package channels

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// MaxAPIBody is the largest request body the HTTP API accepts.
const MaxAPIBody = 10 << 20

// broadcastItem is one message of a POST {path}/api/broadcast body.
type broadcastItem struct {
	Topic   *string         `json:"topic"`
	Event   *string         `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// ServeBroadcastAPI answers POST {path}/api/broadcast: the app publishes
// {"topic","event","payload"} (or an array of them) to every subscriber.
// Answers: 202 when every item was published; 400 with {"error": …} naming
// the problem (nothing is published when any item is invalid); 401 for a
// missing or wrong key; 404 when no api_key is configured; 405 for methods
// other than POST; 413 for bodies over MaxAPIBody.
func (h *Hub) ServeBroadcastAPI(w http.ResponseWriter, r *http.Request) {
	body, ok := h.apiRequest(w, r)
	if !ok {
		return
	}
	cfg := h.Config()
	items, err := parseBroadcastBody(body)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	for i, it := range items {
		if err := h.Broadcast(r.Context(), *it.Topic, *it.Event, JSONPayload(it.Payload), 0); err != nil {
			cfg.Logger.Error("api broadcast failed", zap.String("topic", *it.Topic), zap.Error(err))
			writeJSONError(w, http.StatusServiceUnavailable, fmt.Sprintf("item %d: %v (%d of %d published)", i, err, i, len(items)))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"accepted":%d}`+"\n", len(items))
}

// ServeDisconnectAPI answers POST {path}/api/disconnect {"id": "…"}: every
// socket with that id, on every node, is closed with 1001. Answers as
// ServeBroadcastAPI: 202, 400, 401, 404, 405, 413.
func (h *Hub) ServeDisconnectAPI(w http.ResponseWriter, r *http.Request) {
	body, ok := h.apiRequest(w, r)
	if !ok {
		return
	}
	var req struct {
		ID *string `json:"id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid JSON: "+err.Error())
		return
	}
	if req.ID == nil || *req.ID == "" {
		writeJSONError(w, http.StatusBadRequest, `"id" must be a non-empty string`)
		return
	}
	if err := h.Disconnect(r.Context(), *req.ID); err != nil {
		h.Config().Logger.Error("api disconnect failed", zap.String("socket_id", *req.ID), zap.Error(err))
		writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprint(w, `{"accepted":1}`+"\n")
}

// ServePresenceAPI answers GET {path}/api/presence?topic=…: 200 with the
// topic's presences in presence_state shape ({} when nobody is present); 400
// without a topic; 401 for a missing or wrong key; 404 when no api_key is
// configured; 405 for methods other than GET; 503 when the presence store
// fails.
func (h *Hub) ServePresenceAPI(w http.ResponseWriter, r *http.Request) {
	if !h.apiAuthorized(w, r) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	topic := r.URL.Query().Get("topic")
	if topic == "" {
		writeJSONError(w, http.StatusBadRequest, `missing query parameter "topic"`)
		return
	}
	state, err := h.PresenceList(r.Context(), topic)
	if err != nil {
		h.Config().Logger.Error("api presence failed", zap.String("topic", topic), zap.Error(err))
		writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(state, '\n'))
}

// apiAuthorized checks that the API is enabled and the request carries its
// key; on failure it has answered.
func (h *Hub) apiAuthorized(w http.ResponseWriter, r *http.Request) bool {
	cfg := h.Config()
	if cfg.APIKey == "" {
		writeJSONError(w, http.StatusNotFound, "the HTTP API is disabled: no api_key is configured")
		return false
	}
	if !validBearer(r.Header.Get("Authorization"), cfg.APIKey) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="channels"`)
		writeJSONError(w, http.StatusUnauthorized, "missing or invalid API key")
		return false
	}
	return true
}

// apiRequest checks the key, the method and the body size shared by every
// POST API endpoint and returns the body; on failure it has answered.
func (h *Hub) apiRequest(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if !h.apiAuthorized(w, r) {
		return nil, false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxAPIBody+1))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return nil, false
	}
	if len(body) > MaxAPIBody {
		writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxAPIBody))
		return nil, false
	}
	return body, true
}

// parseBroadcastBody decodes and validates one item or an array of items.
func parseBroadcastBody(body []byte) ([]broadcastItem, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body: want {\"topic\",\"event\",\"payload\"} or an array of them")
	}
	var items []broadcastItem
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		if len(items) == 0 {
			return nil, errors.New("empty array: nothing to broadcast")
		}
	} else {
		var it broadcastItem
		if err := json.Unmarshal(trimmed, &it); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		items = []broadcastItem{it}
	}
	for i := range items {
		if err := items[i].validate(); err != nil {
			if len(items) > 1 || trimmed[0] == '[' {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			return nil, err
		}
	}
	return items, nil
}

func (it *broadcastItem) validate() error {
	if it.Topic == nil || *it.Topic == "" {
		return errors.New(`"topic" must be a non-empty string`)
	}
	if isReservedTopic(*it.Topic) {
		return errors.New(`"topic" must not start with a NUL character (reserved for the gateway)`)
	}
	if it.Event == nil || *it.Event == "" {
		return errors.New(`"event" must be a non-empty string`)
	}
	if isReservedEvent(*it.Event) {
		return fmt.Errorf(`"event" %q is reserved by the Phoenix protocol`, *it.Event)
	}
	if len(it.Payload) == 0 || string(it.Payload) == "null" {
		it.Payload = emptyObject
	}
	if !JSONPayload(it.Payload).IsObject() {
		return errors.New(`"payload" must be a JSON object`)
	}
	return nil
}

// isReservedEvent reports control events an app must not broadcast, since
// clients would take them for protocol frames.
func isReservedEvent(e string) bool {
	switch e {
	case EventJoin, EventLeave, EventReply, EventClose, EventError:
		return true
	}
	return false
}

// validBearer checks "Bearer KEY" in constant time (over fixed-length
// digests, so the key length does not leak either).
func validBearer(header, key string) bool {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	want := sha256.Sum256([]byte(key))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}
