package redisbroker

import (
	"testing"

	"github.com/caddy-channels/caddy-channels/pubsub"
	"github.com/caddy-channels/caddy-channels/pubsub/pubsubtest"
)

func TestBrokerConformance(t *testing.T) {
	pubsubtest.RunBroker(t, func(t *testing.T) pubsub.Broker {
		b, err := New(newEnv(t).options(t))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
