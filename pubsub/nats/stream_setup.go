package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// setUpStream returns the stream of c.cfg. A replicated stream is created
// or updated on this client's first setup (see setUpReplicated); otherwise
// it looks the stream up, creates it when the server has none, and on the
// first setup updates it only when its settings differ from c.cfg. After a
// reconnect the lookup is enough, so that a cluster whose JetStream meta
// leader is being elected again (it was on the server this client lost)
// still serves the stream, whose own leader answers lookups.
//
// A single server is never asked to update a stream whose settings
// already match: with file storage, nats-server 2.9.10 sometimes leaves an
// update that races another client's creation of the same stream
// unanswered, and at times then crashes (a nil pointer in
// stream.updateWithAdvisory). Two nodes starting together did exactly that
// with CreateOrUpdateStream: a probe of two clients creating one stream at
// once hung 32 calls in 520 for the full timeout and took the server down;
// looking up first, 0 in 2,000.
func (c *client) setUpStream(ctx context.Context) (jetstream.Stream, error) {
	if c.cfg.Replicas > 1 && !c.configured {
		return c.setUpReplicated(ctx)
	}
	s, err := c.js.Stream(ctx, c.cfg.Name)
	switch {
	case err == nil:
		if c.configured || !drifted(s.CachedInfo().Config, c.cfg) {
			return s, nil
		}
		updated, err := c.js.UpdateStream(ctx, c.cfg)
		if err != nil {
			// Some settings (storage, say) cannot change in place.
			c.log.Warn("could not update the stream to this node's settings: using it as it is",
				zap.String("stream", c.cfg.Name), zap.Error(err))
			return s, nil
		}
		return updated, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("look up stream %s: %w", c.cfg.Name, err)
	}
	return c.createOrUse(ctx, c.js.CreateStream)
}

// setUpReplicated creates or updates a replicated stream with c.cfg, or
// uses it as it is when that fails (another node is creating it, or it has
// settings that cannot change in place). The clustered update path does
// not have the single-server defect above, and the update on each node's
// start does something the lookup does not: with a lookup instead, a node
// started on a server just restarted answered a catch-up over 79 stored
// messages with recovered false, in 2 runs of 2 (TestHACluster,
// nats-server 2.9.10; why is not known, the stream's settings matched).
func (c *client) setUpReplicated(ctx context.Context) (jetstream.Stream, error) {
	return c.createOrUse(ctx, c.js.CreateOrUpdateStream)
}

// createOrUse sets the stream up with create (within createCtx); when that
// fails, another node created it meanwhile or it has settings that cannot
// change in place: it is used as it is.
func (c *client) createOrUse(ctx context.Context, create func(context.Context, jetstream.StreamConfig) (jetstream.Stream, error)) (jetstream.Stream, error) {
	cctx, cancel := c.createCtx(ctx)
	s, err := create(cctx, c.cfg)
	cancel()
	if err == nil {
		return s, nil
	}
	existing, err2 := c.js.Stream(ctx, c.cfg.Name)
	if err2 != nil {
		return nil, fmt.Errorf("create stream %s: %w", c.cfg.Name, err)
	}
	if drifted(existing.CachedInfo().Config, c.cfg) {
		c.log.Warn("the stream has other settings than this node's and they could not be set: using it as it is",
			zap.String("stream", c.cfg.Name), zap.Error(err))
	}
	return existing, nil
}

// createCtx bounds a stream creation. JetStream 2.9 leaves all but one of
// concurrent creations of a replicated stream unanswered: those give up
// after half the request timeout and look the stream up.
func (c *client) createCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.Replicas > 1 {
		return context.WithTimeout(ctx, c.opts.RequestTimeout/2)
	}
	return ctx, func() {}
}

// drifted reports whether the settings the project gives a stream differ
// between have (as the server reports them) and want. A zero duplicate
// window in want means the server's default, whatever it is.
func drifted(have, want jetstream.StreamConfig) bool {
	if want.Duplicates != 0 && have.Duplicates != want.Duplicates {
		return true
	}
	return have.Description != want.Description ||
		!slices.Equal(have.Subjects, want.Subjects) ||
		have.Retention != want.Retention ||
		have.Discard != want.Discard ||
		have.MaxMsgsPerSubject != want.MaxMsgsPerSubject ||
		have.MaxAge != want.MaxAge ||
		have.Storage != want.Storage ||
		have.Replicas != want.Replicas ||
		have.AllowDirect != want.AllowDirect ||
		!sameRePublish(have.RePublish, want.RePublish)
}

// sameRePublish reports whether two republish settings are alike.
func sameRePublish(a, b *jetstream.RePublish) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
