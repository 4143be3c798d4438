package channels

import (
	"context"

	"github.com/caddy-channels/caddy-channels/webhook"
)

// WebhookClient is what the engine needs of a webhook client: the seam
// between the protocol engine and asking the app. *webhook.Client
// implements it (HTTP, signature, breaker, concurrency cap, notification
// queue); the engine only builds bodies and applies answers (hooks.go).
type WebhookClient interface {
	// Call makes a call and returns the app's answer; its errors wrap
	// webhook.ErrUpstreamUnavailable.
	Call(ctx context.Context, url, event string, body []byte) (webhook.Response, error)
	// Notify queues a fire-and-forget call; false when it was dropped.
	Notify(url, event string, body []byte) bool
	// NotifyWait is Notify waiting for room in the queue until ctx ends.
	NotifyWait(ctx context.Context, url, event string, body []byte) bool
	// Stats returns the client's counters.
	Stats() webhook.Stats
}

var _ WebhookClient = (*webhook.Client)(nil)

// ErrUpstreamUnavailable is webhook.ErrUpstreamUnavailable: a webhook
// could not be asked.
var ErrUpstreamUnavailable = webhook.ErrUpstreamUnavailable
