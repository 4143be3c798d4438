package pubsub_test

import (
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

func TestMemoryConformance(t *testing.T) {
	pubsubtest.RunBroker(t, func(*testing.T) pubsub.Broker { return pubsub.NewMemory() })
}

func TestMemoryPresenceConformance(t *testing.T) {
	pubsubtest.RunPresence(t, func(*testing.T) pubsub.PresenceManager { return pubsub.NewMemoryPresence() })
}
