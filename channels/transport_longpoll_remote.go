package channels

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

// Any node serves any LongPoll session (no sticky sessions): a GET or POST
// whose token names another node is forwarded to that node through the
// broker, on the node's private topic, and the answer comes back on the
// private topic of the node that asked. The session's frames are encoded
// once, on the node that holds it. Only the owner verifies a token's
// signature (its own key), unless a longpoll secret is configured, in
// which case every node verifies before forwarding.
//
// Private topics start with a NUL character: no channel rule matches them
// (Rules.Route) and the publish API refuses them, so clients can neither
// join nor publish to them.

// lpTopicPrefix starts the private topic of a node.
const lpTopicPrefix = "\x00phx_longpoll:"

// lpLookupTimeout is how long, beyond the window, a node waits for the
// owner of a session to answer (Phoenix's pubsub_timeout_ms).
const lpLookupTimeout = 2 * time.Second

// isReservedTopic reports whether topic is the gateway's own.
func isReservedTopic(topic string) bool { return strings.HasPrefix(topic, "\x00") }

// lpNodeTopic is the private topic of node.
func lpNodeTopic(node string) string { return lpTopicPrefix + node }

// lpEnvelope heads a node-to-node message; the request or answer body
// follows it after a newline.
type lpEnvelope struct {
	Op     string `json:"op"`             // "poll", "post" or "reply"
	ID     string `json:"id"`             // the request, echoed by its reply
	From   string `json:"from,omitempty"` // the node awaiting the reply
	Token  string `json:"token,omitempty"`
	NDJSON bool   `json:"ndjson,omitempty"`
	HTTP   int    `json:"http,omitempty"` // the reply's HTTP status
}

// lpReply is an answer from the node that holds a session.
type lpReply struct {
	http int
	body []byte
}

// subscribeNodeTopic subscribes the hub to its private topic.
func (h *Hub) subscribeNodeTopic() {
	if err := h.broker.Subscribe(context.Background(), lpNodeTopic(h.node)); err != nil {
		h.logger().Error("broker subscribe to the node's longpoll topic failed: sessions of this node cannot be served by others",
			zap.Error(err))
	}
}

// forward sends a request for a session of node and waits for its
// answer. No answer within wait means the session (or its node) is gone:
// 410, as Phoenix answers a session it cannot locate. A broker that
// refuses the request answers HTTP 503 with status 500, which phoenix.js
// retries with backoff.
func (h *Hub) forward(ctx context.Context, node string, env lpEnvelope, body []byte, wait time.Duration) (int, []byte) {
	env.ID, env.From = newSessionID(), h.node
	ch := make(chan lpReply, 1)
	h.lp.mu.Lock()
	h.lp.waiting[env.ID] = ch
	h.lp.mu.Unlock()
	defer func() {
		h.lp.mu.Lock()
		delete(h.lp.waiting, env.ID)
		h.lp.mu.Unlock()
	}()
	if err := h.publishEnvelope(ctx, node, env, body); err != nil {
		h.logger().Warn("longpoll request not forwarded to the session's node", zap.String("node", node), zap.Error(err))
		return http.StatusServiceUnavailable, lpStatusBody(500, "broker unavailable")
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.http, r.body
	case <-timer.C:
		return http.StatusOK, lpStatusBody(410, "")
	case <-ctx.Done():
		return http.StatusOK, lpStatusBody(410, "")
	}
}

// publishEnvelope publishes env and body on node's private topic.
func (h *Hub) publishEnvelope(ctx context.Context, node string, env lpEnvelope, body []byte) error {
	head, err := json.Marshal(env)
	if err != nil {
		return err
	}
	payload := make([]byte, 0, len(head)+1+len(body))
	payload = append(append(append(payload, head...), '\n'), body...)
	_, err = h.broker.Publish(ctx, &pubsub.Message{Topic: lpNodeTopic(node), Event: "lp", Payload: payload, Binary: true, Node: h.node}, pubsub.PublishOptions{})
	return err
}

// deliverRemote handles a message on the hub's private topic: a reply to
// a forwarded request, or a request for one of its sessions (served on its
// own goroutine: a poll waits up to the window, and the broker's delivery
// must not).
func (h *Hub) deliverRemote(m *pubsub.Message) {
	head, body, _ := bytes.Cut(m.Payload, []byte("\n"))
	var env lpEnvelope
	if err := json.Unmarshal(head, &env); err != nil || env.ID == "" {
		h.logger().Warn("malformed longpoll message from another node dropped", zap.String("from", m.Node))
		return
	}
	if env.Op == "reply" {
		h.lp.mu.Lock()
		ch := h.lp.waiting[env.ID]
		h.lp.mu.Unlock()
		if ch != nil {
			select {
			case ch <- lpReply{http: env.HTTP, body: bytes.Clone(body)}:
			default:
			}
		}
		return
	}
	if env.From == "" || !isLowerHex(env.From) {
		return
	}
	body = bytes.Clone(body) // the message is shared with other receivers
	go func() {
		status, answer := h.serveRemote(env, body)
		reply := lpEnvelope{Op: "reply", ID: env.ID, HTTP: status}
		ctx, cancel := context.WithTimeout(context.Background(), lpLookupTimeout)
		defer cancel()
		if err := h.publishEnvelope(ctx, env.From, reply, answer); err != nil {
			h.logger().Warn("longpoll answer not sent back to the node that forwarded the request", zap.String("node", env.From), zap.Error(err))
		}
	}()
}

// serveRemote serves a poll or post forwarded by another node.
func (h *Hub) serveRemote(env lpEnvelope, body []byte) (int, []byte) {
	cfg := h.Config()
	node, id, ok := splitToken(env.Token)
	if !ok || node != h.node {
		return http.StatusOK, lpStatusBody(410, "")
	}
	ss := h.lp.get(id)
	if ss == nil || ss.gone() || subtle.ConstantTimeCompare([]byte(env.Token), []byte(ss.token)) != 1 {
		return http.StatusOK, lpStatusBody(410, "")
	}
	switch env.Op {
	case "poll":
		return http.StatusOK, h.pollAnswer(context.Background(), ss)
	case "post":
		if int64(len(body)) > cfg.LongPoll.MaxBodySize {
			return http.StatusRequestEntityTooLarge, lpStatusBody(413, "body too large")
		}
		return h.publishAnswer(cfg, ss, body, env.NDJSON)
	}
	return http.StatusBadRequest, lpStatusBody(400, "unknown operation")
}
