package channels

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/webhook"
)

// This file is the engine's side of the connect, join, handle_in and
// leave webhooks (docs/webhooks.md): what a socket and a message say in a
// body, and how the app's answer acts on sockets and channels. Bodies,
// answers and the HTTP client are package webhook.

// Leave reasons sent to leave webhooks.
const (
	LeaveReasonLeave         = "leave"
	LeaveReasonClosed        = "closed"
	LeaveReasonTimeout       = "timeout"
	LeaveReasonDuplicateJoin = "duplicate_join"
	LeaveReasonShutdown      = "shutdown"
	LeaveReasonDisconnect    = "disconnect"
	LeaveReasonTokenExpired  = "token_expired"
	LeaveReasonFlood         = "flood"
)

// reasonUpstreamUnavailable is the error reason clients get when a webhook
// fails (timeout, connection error, non-2xx, unparsable answer).
const reasonUpstreamUnavailable = "upstream_unavailable"

// hookSocket is what webhook bodies say of s.
func (s *Socket) hookSocket() webhook.Socket {
	return webhook.Socket{ID: s.id, Transport: s.transport, Vsn: s.vsn, RemoteIP: s.remoteIP, Params: s.params, AuthToken: s.authToken}
}

// hookMessage is what webhook bodies say of m.
func hookMessage(m *Message) webhook.Message {
	return webhook.Message{Topic: m.Topic, Event: m.Event, Payload: m.Payload.JSON, Binary: m.Payload.Data,
		IsBinary: m.Payload.Binary, Ref: m.Ref, JoinRef: m.JoinRef}
}

// callHook POSTs a webhook whose body encode appends, and decodes a JSON
// answer into out (when the answer has a body). It returns the HTTP
// status; err is set for transport failures, non-2xx statuses other than
// those in okStatuses, and bodies that are not valid JSON.
func (h *Hub) callHook(cfg *Config, url, event string, encode func([]byte) ([]byte, error), out any, okStatuses ...int) (int, error) {
	if cfg.Webhooks == nil {
		return 0, fmt.Errorf("%w: no webhook client configured", ErrUpstreamUnavailable)
	}
	buf := webhook.GetBody()
	defer webhook.PutBody(buf)
	raw, err := encode(*buf)
	*buf = raw[:0]
	if err != nil {
		return 0, fmt.Errorf("encoding %s webhook body: %w", event, err)
	}
	resp, err := cfg.Webhooks.Call(context.Background(), url, event, raw)
	if err != nil {
		return 0, err
	}
	ok := resp.Status >= 200 && resp.Status < 300
	for _, st := range okStatuses {
		ok = ok || resp.Status == st
	}
	if !ok {
		if resp.Status < 500 { // Webhooks.Call logs 5xx answers as failures itself
			cfg.Logger.Warn("webhook answered an error status",
				zap.String("url", url), zap.String("event", event), zap.Int("status", resp.Status), zap.Duration("latency", resp.Latency))
		}
		return resp.Status, fmt.Errorf("%w: %s webhook answered %d", ErrUpstreamUnavailable, event, resp.Status)
	}
	if len(resp.Body) > 0 && resp.Status >= 200 && resp.Status < 300 && resp.Status != http.StatusNoContent {
		if err := webhook.Decode(resp.Body, out); err != nil {
			cfg.Logger.Warn("webhook answer is not valid JSON",
				zap.String("url", url), zap.String("event", event), zap.Int("status", resp.Status), zap.Duration("latency", resp.Latency), zap.Error(err))
			return resp.Status, fmt.Errorf("%w: %s webhook answer: %v", ErrUpstreamUnavailable, event, err)
		}
	}
	return resp.Status, nil
}

// connectUpstream asks the connect webhook. It fills s.assigns and s.id on
// success; the error is an *HTTPError (403 refused, 503 unavailable).
func (h *Hub) connectUpstream(cfg *Config, s *Socket, g *Gate, r *http.Request) error {
	headers := map[string]string{}
	for _, name := range g.ForwardHeaders {
		if v := r.Header.Values(name); len(v) > 0 {
			headers[name] = joinHeader(v)
		}
	}
	sock := s.hookSocket()
	body := func(b []byte) ([]byte, error) { return webhook.AppendConnect(b, &sock, headers) }
	var answer webhook.ConnectAnswer
	status, err := h.callHook(cfg, g.Upstream, "connect", body, &answer, http.StatusUnauthorized, http.StatusForbidden)
	switch {
	case err != nil:
		return &HTTPError{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("connect webhook: %w", err)}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return httpErrorf(http.StatusForbidden, "connect refused by webhook (status %d)", status)
	case answer.Status != "" && answer.Status != "ok":
		return httpErrorf(http.StatusForbidden, "connect refused by webhook (status %q)", answer.Status)
	}
	if answer.Assigns != nil {
		s.assigns = answer.Assigns
	}
	if answer.ID != nil {
		s.id = *answer.ID
	}
	return nil
}

// joinUpstream asks the join webhook. It returns the reply status and
// response, and the channel assigns on success.
func (s *Socket) joinUpstream(cfg *Config, rule *ChannelRule, m *Message) (status string, response Payload, assigns map[string]any, presence *webhook.Presence) {
	sock, msg := s.hookSocket(), hookMessage(m)
	body := func(b []byte) ([]byte, error) { return webhook.AppendJoin(b, &sock, s.assigns, &msg) }
	var answer webhook.JoinAnswer
	code, err := s.hub.callHook(cfg, rule.Join.Upstream, "join", body, &answer, http.StatusUnauthorized, http.StatusForbidden)
	switch {
	case err != nil:
		return "error", JSONPayload(reasonJSON(reasonUpstreamUnavailable)), nil, nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "error", JSONPayload(reasonJSON(ReasonUnauthorized)), nil, nil
	}
	status = answer.Status
	if status == "" {
		status = "ok"
	}
	response = JSONPayload(answer.Response)
	if len(answer.Response) == 0 || string(answer.Response) == "null" {
		response = JSONPayload(emptyObject)
	}
	assigns = maps.Clone(s.assigns)
	if assigns == nil {
		assigns = map[string]any{}
	}
	maps.Copy(assigns, answer.Assigns)
	return status, response, assigns, answer.Presence
}

// handleInUpstream forwards a push to the handle_in webhook and carries out
// its answer: broadcasts, broadcast_from, pushes, then the reply, then stop.
func (s *Socket) handleInUpstream(cfg *Config, sub *subscription, url string, m *Message) {
	sock, msg := s.hookSocket(), hookMessage(m)
	body := func(b []byte) ([]byte, error) { return webhook.AppendHandleIn(b, &sock, sub.assigns, &msg) }
	var answer webhook.HandleInAnswer
	if _, err := s.hub.callHook(cfg, url, "handle_in", body, &answer); err != nil {
		s.replyError(sub.joinRef, m.Ref, m.Topic, reasonUpstreamUnavailable)
		return
	}
	log := &hookLogger{base: cfg.Logger, url: url, topic: m.Topic, event: m.Event}
	for _, b := range answer.Broadcast {
		s.hookBroadcast(log, sub, b, 0)
	}
	for _, b := range answer.BroadcastFrom {
		s.hookBroadcast(log, sub, b, sub.id)
	}
	pushFailed := false
	for _, p := range answer.Push {
		payload, err := hookPayload(p.Payload, p.Binary)
		switch {
		case err != nil:
		case p.Event == "":
			err = errors.New("push without event")
		case !payload.Binary && !payload.IsObject():
			err = ErrPayloadNotObject
		case isReservedEvent(p.Event):
			err = fmt.Errorf("event %q is reserved", p.Event)
		}
		if err != nil {
			log.logger().Warn("webhook push item skipped", zap.Error(err))
			continue
		}
		f, err := s.ser.EncodeMessage(sub.joinRef, nil, m.Topic, p.Event, payload)
		if err != nil {
			// A binary push to a V1 client: it gets an error reply instead.
			log.logger().Warn("webhook push not encodable for this client", zap.String("vsn", s.vsn), zap.Error(err))
			pushFailed = pushFailed || errors.Is(err, ErrBinaryUnsupported)
			continue
		}
		s.send(f)
	}
	if answer.Presence != nil && len(answer.Presence.Meta) > 0 && string(answer.Presence.Meta) != "null" {
		s.updatePresence(log.logger(), sub, answer.Presence.Meta)
	}
	if answer.Assigns != nil {
		sub.mergeAssigns(answer.Assigns)
	}
	switch {
	case pushFailed:
		s.replyError(sub.joinRef, m.Ref, m.Topic, replyErrorReason(ErrBinaryUnsupported))
	case answer.Reply != nil:
		status := answer.Reply.Status
		if status == "" {
			status = "ok"
		}
		response, err := hookPayload(answer.Reply.Response, answer.Reply.Binary)
		if err != nil {
			log.logger().Warn("webhook reply invalid", zap.Error(err))
			s.replyError(sub.joinRef, m.Ref, m.Topic, reasonUpstreamUnavailable)
			break
		}
		s.reply(sub.joinRef, m.Ref, m.Topic, status, response)
	}
	if answer.Stop != nil {
		// The app asked to stop: no leave webhook for its own decision.
		s.hub.unsubscribe(sub)
		s.channels.remove(sub.topic)
		s.sendControlEvent(sub, EventClose, emptyObject)
	}
}

// hookLogger builds the logger of a handle_in answer's problems on first
// use, so that answers carried out without a problem log nothing and
// allocate no fields.
type hookLogger struct {
	base              *zap.Logger
	url, topic, event string
	l                 *zap.Logger
}

// logger returns the base logger with the call's url, topic and event.
func (h *hookLogger) logger() *zap.Logger {
	if h.l == nil {
		h.l = h.base.With(zap.String("url", h.url), zap.String("topic", h.topic), zap.String("event", h.event))
	}
	return h.l
}

// hookBroadcast publishes one broadcast item of a handle_in answer.
func (s *Socket) hookBroadcast(log *hookLogger, sub *subscription, b webhook.Item, exclude uint64) {
	payload, err := hookPayload(b.Payload, b.Binary)
	switch {
	case err != nil:
	case b.Event == "":
		err = errors.New("broadcast without event")
	case !payload.Binary && !payload.IsObject():
		err = ErrPayloadNotObject
	case isReservedEvent(b.Event):
		err = fmt.Errorf("event %q is reserved", b.Event)
	}
	if err != nil {
		log.logger().Warn("webhook broadcast item skipped", zap.Error(err))
		return
	}
	if err := s.hub.Broadcast(context.Background(), sub.topic, b.Event, payload, exclude); err != nil {
		log.logger().Error("webhook broadcast failed", zap.Error(err))
	}
}

// hookPayload decodes an answer item's payload: binary (base64) when b64
// is set, else JSON ({} when missing or null).
func hookPayload(raw json.RawMessage, b64 *string) (Payload, error) {
	if b64 != nil {
		data, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return Payload{}, fmt.Errorf("binary is not base64: %w", err)
		}
		return BinaryPayload(data), nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		return JSONPayload(emptyObject), nil
	}
	return JSONPayload(raw), nil
}

// notifyLeave queues the leave webhook of a channel, if its rule has one.
func (s *Socket) notifyLeave(cfg *Config, sub *subscription, reason string) {
	rule, _, ok := cfg.Rules.Route(sub.topic)
	if !ok || rule.LeaveUpstream == "" {
		return
	}
	if cfg.Webhooks == nil {
		cfg.Logger.Warn("leave webhook skipped: no webhook client configured", zap.String("topic", sub.topic))
		return
	}
	sock := s.hookSocket()
	body, err := webhook.AppendLeave(nil, &sock, sub.assigns, sub.topic, reason)
	if err != nil {
		cfg.Logger.Warn("leave webhook skipped: body not encodable", zap.String("topic", sub.topic), zap.Error(err))
		return
	}
	if ctx := s.hub.drainContext(); ctx != nil && reason == LeaveReasonShutdown {
		cfg.Webhooks.NotifyWait(ctx, rule.LeaveUpstream, "leave", body) // room in the queue, until the drain deadline
		return
	}
	cfg.Webhooks.Notify(rule.LeaveUpstream, "leave", body)
}
