package natsbroker

import (
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

func TestBrokerConformance(t *testing.T) {
	requireServer(t)
	pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker {
		return newTestBroker(t, testOptions(t))
	})
}
