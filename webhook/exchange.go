package webhook

import (
	"context"
	"time"
)

// userAgent is the User-Agent of every webhook request.
const userAgent = "caddy-channels"

// request is one webhook request as the exchangers send it: a POST of
// body with the documented headers.
type request struct {
	url, event string
	body       []byte
	signature  []byte // X-Channels-Signature value; nil when unsigned
	maxBody    int64  // answers with a larger body fail
}

// exchanger carries one request to the app and reads its answer: the
// seam between the webhook contract (Client: breaker, concurrency cap,
// notifications, signature) and the HTTP library. Both implementations
// follow one contract, which the tests run against each: no redirects
// followed, no proxy, no compression asked, an answer body capped at
// maxBody (a larger or truncated one is an error with Status set), the
// whole exchange bounded by deadline and by ctx, and a retry on another
// connection only when the connection failed before any answer byte.
type exchanger interface {
	exchange(ctx context.Context, deadline time.Time, r request) (Response, error)
	// closeIdle closes the idle pooled connections.
	closeIdle()
}
