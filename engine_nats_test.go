package caddychannels

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	natsbroker "github.com/caddy-channels/caddy-channels/pubsub/nats"
)

func TestNATSEngineCaddyfile(t *testing.T) {
	t.Parallel()
	checkEngineParses(t, []engineCase{
		{"nats", `{}`},
		{"nats nats://10.0.0.1:4222 nats://10.0.0.2:4222 nats://10.0.0.3:4222 {\n\treplicas 3\n\tname caddy-a\n}",
			`{"urls":["nats://10.0.0.1:4222","nats://10.0.0.2:4222","nats://10.0.0.3:4222"],"name":"caddy-a","replicas":3}`},
		{"nats tls://n:4222 {\n\tprefix app\n\tstorage memory\n\tpresence_ttl 10s\n\treconnect_wait 50ms\n\tmax_reconnect_wait 1s\n}",
			`{"urls":["tls://n:4222"],"prefix":"app","presence_ttl":10000000000,"reconnect_wait":50000000,"max_reconnect_wait":1000000000,"storage":"memory"}`},
	}, func(e *NATSEngine) error {
		_, err := natsbroker.New(e.options(zap.NewNop()))
		return err
	})
}

func TestNATSEngineCaddyfileErrors(t *testing.T) {
	t.Parallel()
	checkEngineRefuses[NATSEngine](t, []engineCase{
		{"nats {\n\treplicas 6\n}", "not in 1..5"},
		{"nats {\n\treplicas 0\n}", "invalid positive number"},
		{"nats {\n\treplicas three\n}", "invalid positive number"},
		{"nats {\n\tname\n}", "wrong argument count"},
		{"nats {\n\tbogus 1\n}", "unrecognized option"},
	})
	// The JSON form is checked when the engine is made.
	if _, err := natsbroker.New((&NATSEngine{Replicas: 9}).options(zap.NewNop())); err == nil || !strings.Contains(err.Error(), "not in 1..5") {
		t.Errorf("replicas 9 from JSON: %v", err)
	}
}
