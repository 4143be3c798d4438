package caddychannels

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
)

func init() {
	caddy.RegisterModule(MemoryEngine{})
}

// Engine is implemented by the guest modules of namespace channels.pubsub
// (memory, redis, nats): each makes the broker that carries a hub's
// broadcasts and the presence manager that stores its presences. NewEngine
// is called once per hub, when a config first uses a path with these
// settings; a reload with unchanged settings keeps the hub and its
// connections. Implementations must not fail when their server is down:
// they connect in the background and report through the logger.
type Engine interface {
	NewEngine(logger *zap.Logger) (pubsub.Broker, pubsub.PresenceManager, error)
}

// newEngine makes a broker and a presence manager from their constructors,
// closing the broker when the presence manager cannot be made.
func newEngine[B pubsub.Broker, P pubsub.PresenceManager](name string, newBroker func() (B, error), newPresence func() (P, error)) (pubsub.Broker, pubsub.PresenceManager, error) {
	b, err := newBroker()
	if err != nil {
		return nil, nil, fmt.Errorf("%s broker: %w", name, err)
	}
	p, err := newPresence()
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("%s presence: %w", name, err)
	}
	return b, p, nil
}

// MemoryEngine is the default engine, channels.pubsub.memory: broadcasts,
// history and presence live in this process only.
type MemoryEngine struct{}

// CaddyModule returns the Caddy module information.
func (MemoryEngine) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "channels.pubsub.memory",
		New: func() caddy.Module { return new(MemoryEngine) },
	}
}

// NewEngine returns the in-memory broker and presence manager.
func (MemoryEngine) NewEngine(*zap.Logger) (pubsub.Broker, pubsub.PresenceManager, error) {
	return pubsub.NewMemory(), pubsub.NewMemoryPresence(), nil
}

// UnmarshalCaddyfile reads `pubsub memory` (no arguments, no block).
func (*MemoryEngine) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the engine name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		return d.Errf("pubsub memory takes no options, got %q", d.Val())
	}
	return nil
}

// Interface guards.
var (
	_ Engine                = (*MemoryEngine)(nil)
	_ caddyfile.Unmarshaler = (*MemoryEngine)(nil)
)
