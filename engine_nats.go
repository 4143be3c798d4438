package caddychannels

import (
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/pubsub"
	natsbroker "github.com/caddy-channels/caddy-channels/pubsub/nats"
)

func init() {
	caddy.RegisterModule(NATSEngine{})
}

// NATSEngine is channels.pubsub.nats: broadcasts on core NATS subjects
// (subscribed per topic only while a local socket is in it), history in a
// JetStream stream with "<epoch>:<seq>" positions, and presence in a
// JetStream stream with node heartbeats, expiring when a node dies.
type NATSEngine struct {
	// URLs are the servers, e.g. nats://127.0.0.1:4222; placeholders are
	// resolved. Default: nats://127.0.0.1:4222.
	URLs []string `json:"urls,omitempty"`
	// Name is the connection name shown in the server's monitoring
	// (/connz, nats-top); placeholders are resolved. Default
	// "caddy-channels"; give each node its own, e.g. "caddy-{env.HOSTNAME}",
	// to tell them apart.
	Name string `json:"name,omitempty"`
	// Token, User and Password authenticate; placeholders are resolved.
	Token    string `json:"token,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// CredentialsFile (.creds) and NKeySeedFile authenticate with NKeys.
	CredentialsFile string `json:"credentials_file,omitempty"`
	NKeySeedFile    string `json:"nkey_seed_file,omitempty"`
	// Prefix starts every subject and names the streams. Default
	// "channels".
	Prefix string `json:"prefix,omitempty"`
	// PresenceTTL is how long the presences of a dead node survive. Default
	// 30s.
	PresenceTTL caddy.Duration `json:"presence_ttl,omitempty"`
	// RequestTimeout bounds each request; ConnectTimeout each dial.
	RequestTimeout caddy.Duration `json:"request_timeout,omitempty"`
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
	// ReconnectWait and MaxReconnectWait bound the reconnect backoff.
	ReconnectWait    caddy.Duration `json:"reconnect_wait,omitempty"`
	MaxReconnectWait caddy.Duration `json:"max_reconnect_wait,omitempty"`
	// Storage is "file" (default) or "memory" for the JetStream streams.
	Storage string `json:"storage,omitempty"`
	// Replicas of the history and presence streams in a clustered
	// JetStream (1 to 5, at most the number of servers). Default 1; 3 on
	// a three-server cluster survives the loss of any one server.
	Replicas int `json:"replicas,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (NATSEngine) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "channels.pubsub.nats",
		New: func() caddy.Module { return new(NATSEngine) },
	}
}

// options converts the config, resolving placeholders.
func (e *NATSEngine) options(logger *zap.Logger) natsbroker.Options {
	repl := caddy.NewReplacer()
	var urls []string
	for _, u := range e.URLs {
		urls = append(urls, repl.ReplaceKnown(u, ""))
	}
	return natsbroker.Options{
		URLs:             urls,
		Name:             repl.ReplaceKnown(e.Name, ""),
		Token:            repl.ReplaceKnown(e.Token, ""),
		User:             repl.ReplaceKnown(e.User, ""),
		Password:         repl.ReplaceKnown(e.Password, ""),
		CredentialsFile:  e.CredentialsFile,
		NKeySeedFile:     e.NKeySeedFile,
		Prefix:           e.Prefix,
		PresenceTTL:      time.Duration(e.PresenceTTL),
		RequestTimeout:   time.Duration(e.RequestTimeout),
		ConnectTimeout:   time.Duration(e.ConnectTimeout),
		ReconnectWait:    time.Duration(e.ReconnectWait),
		MaxReconnectWait: time.Duration(e.MaxReconnectWait),
		Storage:          e.Storage,
		Replicas:         e.Replicas,
		Logger:           logger,
	}
}

// NewEngine makes the NATS broker and presence manager. Neither fails when
// NATS is down: they reconnect in the background and log.
func (e *NATSEngine) NewEngine(logger *zap.Logger) (pubsub.Broker, pubsub.PresenceManager, error) {
	opts := e.options(logger.Named("nats"))
	return newEngine("nats",
		func() (*natsbroker.Broker, error) { return natsbroker.New(opts) },
		func() (*natsbroker.Presence, error) { return natsbroker.NewPresence(opts) })
}

// UnmarshalCaddyfile reads
//
//	pubsub nats [<url>...] {
//		name | token | user | password | credentials_file | nkey_seed_file | prefix | storage  <value>
//		presence_ttl | request_timeout | connect_timeout | reconnect_wait | max_reconnect_wait  <duration>
//		replicas <n>
//	}
func (e *NATSEngine) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the engine name
	e.URLs = d.RemainingArgs()
	strs := map[string]*string{
		"name": &e.Name, "token": &e.Token, "user": &e.User, "password": &e.Password,
		"credentials_file": &e.CredentialsFile, "nkey_seed_file": &e.NKeySeedFile, "prefix": &e.Prefix, "storage": &e.Storage,
	}
	durations := map[string]*caddy.Duration{
		"presence_ttl": &e.PresenceTTL, "request_timeout": &e.RequestTimeout, "connect_timeout": &e.ConnectTimeout,
		"reconnect_wait": &e.ReconnectWait, "max_reconnect_wait": &e.MaxReconnectWait,
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		var err error
		if dst, ok := strs[name]; ok {
			err = oneArg(d, dst)
		} else if dst, ok := durations[name]; ok {
			err = durationArg(d, dst)
		} else if name == "replicas" {
			if err = intArg(d, &e.Replicas); err == nil && (e.Replicas < 1 || e.Replicas > 5) {
				err = d.Errf("pubsub nats: replicas %d not in 1..5", e.Replicas)
			}
		} else {
			return d.Errf("pubsub nats: unrecognized option %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guards.
var (
	_ Engine                = (*NATSEngine)(nil)
	_ caddyfile.Unmarshaler = (*NATSEngine)(nil)
)
