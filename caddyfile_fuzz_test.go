package caddychannels

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile: any channels block either parses into a handler
// whose JSON round-trips, or is an error; it never panics.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"channels",
		"channels {\n\tdrain {\n\t\tbatch 500\n\t\tinterval 1s\n\t\ttimeout 20s\n\t}\n}",
		"channels {\n\tdrain 10 {\n\t}\n}",
		"channels {\n\tpath /socket\n\tchannel room:* {\n\t\tjoin allow\n\t\thandle_in new_msg broadcast\n\t\thistory 10 ttl 1m\n\t}\n}",
		"channels {\n\tid \"'user:' + params.id\"\n\tmax_queue_size 2MiB\n\twrite_delay 5ms\n}",
		"channels {\n\tauth jwt {\n\t\tkey s3cret\n\t\tpublic_key /k.pem\n\t\talgorithms HS256 ES256\n\t\tleeway 5s\n\t\ttoken \"params.t\"\n\t\texpire off\n\t}\n}",
		"channels {\n\tlimit messages 20/1s burst 40\n\tlimit joins 5/s\n\tlimit connects 10/1m per ip\n\tlimit flood_factor 4\n\tmax_sockets_per_ip 50\n\tmax_sockets_per_id 5\n}",
		"channels {\n\tchannel room:* {\n\t\tjoin allow\n\t\thandle_in typing broadcast_from limit 2/1s\n\t}\n}",
		"channels {\n\tpubsub redis sentinel a:26379 b:26379 {\n\t\tmaster_name m\n\t\tsentinel_password s\n\t\tdb 1\n\t}\n}",
		"channels {\n\tpubsub redis cluster a:7000 b:7000 {\n\t\tpassword p\n\t\ttls\n\t}\n}",
		"channels {\n\tpubsub nats nats://a:4222 nats://b:4222 nats://c:4222 {\n\t\treplicas 3\n\t\tname caddy-a\n\t}\n}",
		"channels {\n\tcompression on {\n\t\tthreshold 1KiB\n\t\tlevel 5\n\t}\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		d, ok := fuzzDispenser(input)
		if !ok {
			return
		}
		h := new(Handler)
		if err := h.UnmarshalCaddyfile(d); err != nil {
			return
		}
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("parsed %q but its JSON does not marshal: %v", input, err)
		}
		var back Handler
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("JSON of %q does not unmarshal: %v\n%s", input, err, b)
		}
	})
}

// fuzzDispenser tokenizes input with Caddy's lexer (without the adapter's
// {$ENV} substitution, which fuzzed text has no use for) and reports
// whether it is a Caddyfile at all. caddyfile.NewTestDispenser cannot be used
// on arbitrary input: it calls log.Fatalf on a lexer error (an unclosed
// heredoc such as "<<\n"), which ends the fuzzing worker with exit status 1.
// Text Caddy's lexer refuses never reaches a module's UnmarshalCaddyfile.
func fuzzDispenser(input string) (*caddyfile.Dispenser, bool) {
	tokens, err := caddyfile.Tokenize([]byte(input), "Fuzzfile")
	if err != nil {
		return nil, false
	}
	return caddyfile.NewDispenser(tokens), true
}
