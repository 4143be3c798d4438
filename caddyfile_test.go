package caddychannels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-channels/caddy-channels/channels"
)

// unmarshalTestfile parses input, a `channels` directive, into a Handler.
func unmarshalTestfile(input string) (*Handler, error) {
	h := new(Handler)
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return h, err
}

func TestUnmarshalCaddyfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		// want is the handler's JSON; it is compacted before the byte
		// comparison, so it may be indented but must list fields in
		// struct order.
		want string
	}{
		{
			name:  "bare directive",
			input: `channels`,
			want:  `{}`,
		},
		{
			name:  "drain",
			input: "channels {\n\tdrain {\n\t\tbatch 500\n\t\tinterval 1s\n\t\ttimeout 20s\n\t}\n}",
			want:  `{"drain": {"batch": 500, "interval": 1000000000, "timeout": 20000000000}}`,
		},
		{
			name:  "longpoll",
			input: "channels {\n\tlongpoll {\n\t\twindow 5s\n\t\tsecret {env.LP_SECRET}\n\t\tmax_sessions 2000\n\t\tmax_body_size 2MiB\n\t}\n}",
			want:  `{"longpoll": {"window": 5000000000, "secret": "{env.LP_SECRET}", "max_sessions": 2000, "max_body_size": 2097152}}`,
		},
		{
			name:  "longpoll off",
			input: "channels {\n\tlongpoll off\n}",
			want:  `{"longpoll": {"off": true}}`,
		},
		{
			name:  "longpoll, defaults",
			input: "channels {\n\tlongpoll\n}",
			want:  `{"longpoll": {}}`,
		},
		{
			name:  "drain, defaults",
			input: "channels {\n\tdrain {\n\t\tinterval 500ms\n\t}\n}",
			want:  `{"drain": {"interval": 500000000}}`,
		},
		{
			name:  "empty block",
			input: "channels {\n}",
			want:  `{}`,
		},
		{
			name: "issue example",
			input: `channels {
				path /socket
				check_origin https://example.com https://*.example.com
				api_key {env.CHANNELS_API_KEY}
				connect if "params.token != ''"
				assign user_id "params.user"
				id "'user_socket:' + params.user"
				channel room:* {
					join allow
					handle_in new_msg broadcast
					handle_in typing broadcast_from
					handle_in ping reply
				}
				channel admin:* {
					join if "assigns.role == 'admin'"
				}
				channel secret:* {
					join deny "unauthorized"
				}
			}`,
			want: `{
				"path": "/socket",
				"check_origin": ["https://example.com", "https://*.example.com"],
				"api_key": "{env.CHANNELS_API_KEY}",
				"connect": {"action": "if", "expr": "params.token != ''"},
				"assign": [{"key": "user_id", "expr": "params.user"}],
				"id": "'user_socket:' + params.user",
				"channels": [
					{"pattern": "room:*", "join": {"action": "allow"}, "handle_in": [
						{"event": "new_msg", "action": "broadcast"},
						{"event": "typing", "action": "broadcast_from"},
						{"event": "ping", "action": "reply"}
					]},
					{"pattern": "admin:*", "join": {"action": "if", "expr": "assigns.role == 'admin'"}},
					{"pattern": "secret:*", "join": {"action": "deny", "reason": "unauthorized"}}
				]
			}`,
		},
		{
			name: "limits and timeouts",
			input: `channels {
				idle_timeout 90s
				write_timeout 1m30s
				max_frame_size 64KiB
				max_channels 20
				max_queue_size 2MiB
			}`,
			want: `{
				"idle_timeout": 90000000000,
				"write_timeout": 90000000000,
				"max_frame_size": 65536,
				"max_channels": 20,
				"max_queue_size": 2097152
			}`,
		},
		{
			name: "size units and day durations",
			input: `channels {
				idle_timeout 1d
				write_timeout 250ms
				max_frame_size 1MB
				max_queue_size 512
			}`,
			want: `{
				"idle_timeout": 86400000000000,
				"write_timeout": 250000000,
				"max_frame_size": 1000000,
				"max_queue_size": 512
			}`,
		},
		{
			name:  "check_origin off",
			input: "channels {\n\tcheck_origin off\n}",
			want:  `{"check_origin": ["off"]}`,
		},
		{
			name:  "check_origin conn",
			input: "channels {\n\tcheck_origin conn\n}",
			want:  `{"check_origin": ["conn"]}`,
		},
		{
			name:  "check_origin bare hosts and any scheme",
			input: "channels {\n\tcheck_origin example.com *.example.org //chat.example.net:8443\n}",
			want:  `{"check_origin": ["example.com", "*.example.org", "//chat.example.net:8443"]}`,
		},
		{
			name:  "connect allow",
			input: "channels {\n\tconnect allow\n}",
			want:  `{"connect": {"action": "allow"}}`,
		},
		{
			name:  "connect deny without reason",
			input: "channels {\n\tconnect deny\n}",
			want:  `{"connect": {"action": "deny"}}`,
		},
		{
			name:  "connect deny with reason",
			input: "channels {\n\tconnect deny \"maintenance, try later\"\n}",
			want:  `{"connect": {"action": "deny", "reason": "maintenance, try later"}}`,
		},
		{
			name: "assigns keep their order",
			input: `channels {
				assign user_id "has(params.user) ? params.user : 'anonymous'"
				assign role "'member'"
				assign tag "assigns.role + ':' + assigns.user_id"
				id "'user_socket:' + assigns.user_id"
			}`,
			want: `{
				"assign": [
					{"key": "user_id", "expr": "has(params.user) ? params.user : 'anonymous'"},
					{"key": "role", "expr": "'member'"},
					{"key": "tag", "expr": "assigns.role + ':' + assigns.user_id"}
				],
				"id": "'user_socket:' + assigns.user_id"
			}`,
		},
		{
			name: "join replies",
			input: `channels {
				channel room:* {
					join allow reply "{'welcome': subtopic}"
				}
				channel vip:* {
					join if "assigns.role == 'vip'" reply "{'topic': topic}"
				}
			}`,
			want: `{"channels": [
				{"pattern": "room:*", "join": {"action": "allow", "reply": "{'welcome': subtopic}"}},
				{"pattern": "vip:*", "join": {"action": "if", "expr": "assigns.role == 'vip'", "reply": "{'topic': topic}"}}
			]}`,
		},
		{
			name:  "backtick quoted expression",
			input: "channels {\n\tchannel admin:* {\n\t\tjoin if `assigns.role == \"admin\"`\n\t}\n}",
			want:  `{"channels": [{"pattern": "admin:*", "join": {"action": "if", "expr": "assigns.role == \"admin\""}}]}`,
		},
		{
			name: "channels keep their order and may have no block",
			input: `channels {
				channel lobby {
					join allow
				}
				channel room:*
				path /ws
				channel * {
					join deny "no such topic"
				}
			}`,
			want: `{
				"path": "/ws",
				"channels": [
					{"pattern": "lobby", "join": {"action": "allow"}},
					{"pattern": "room:*"},
					{"pattern": "*", "join": {"action": "deny", "reason": "no such topic"}}
				]
			}`,
		},
		{
			name: "handle_in wildcard next to named events",
			input: `channels {
				channel room:* {
					join allow
					handle_in * noreply
					handle_in new_msg broadcast
				}
			}`,
			want: `{"channels": [{"pattern": "room:*", "join": {"action": "allow"}, "handle_in": [
				{"event": "*", "action": "noreply"},
				{"event": "new_msg", "action": "broadcast"}
			]}]}`,
		},
		{
			name:  "join deny reason with a space",
			input: "channels {\n\tchannel secret:* {\n\t\tjoin deny \"go away\"\n\t}\n}",
			want:  `{"channels": [{"pattern": "secret:*", "join": {"action": "deny", "reason": "go away"}}]}`,
		},
		{
			name: "connect upstream with forward_headers and webhook settings",
			input: `channels {
				connect upstream http://127.0.0.1:3000/socket/connect {
					forward_headers Cookie Authorization
					forward_headers User-Agent
				}
				webhook_secret {env.CHANNELS_WEBHOOK_SECRET}
				webhook_timeout 3s
			}`,
			want: `{
				"connect": {"action": "upstream", "upstream": "http://127.0.0.1:3000/socket/connect",
					"forward_headers": ["Cookie", "Authorization", "User-Agent"]},
				"webhook_secret": "{env.CHANNELS_WEBHOOK_SECRET}",
				"webhook_timeout": 3000000000
			}`,
		},
		{
			name:  "connect upstream without a block",
			input: "channels {\n\tconnect upstream https://app.internal/socket/connect\n}",
			want:  `{"connect": {"action": "upstream", "upstream": "https://app.internal/socket/connect"}}`,
		},
		{
			name: "issue 3 webhooks example",
			input: `channels {
				connect upstream http://localhost:3000/socket/connect {
					forward_headers Cookie Authorization User-Agent
				}
				webhook_secret {env.CHANNELS_WEBHOOK_SECRET}
				webhook_timeout 3s
				channel room:* {
					join upstream http://localhost:3000/channels/join
					handle_in typing broadcast_from
					handle_in * upstream http://localhost:3000/channels/event
					leave upstream http://localhost:3000/channels/leave
				}
			}`,
			want: `{
				"connect": {"action": "upstream", "upstream": "http://localhost:3000/socket/connect",
					"forward_headers": ["Cookie", "Authorization", "User-Agent"]},
				"channels": [{"pattern": "room:*",
					"join": {"action": "upstream", "upstream": "http://localhost:3000/channels/join"},
					"handle_in": [
						{"event": "typing", "action": "broadcast_from"},
						{"event": "*", "action": "upstream", "upstream": "http://localhost:3000/channels/event"}
					],
					"leave": {"upstream": "http://localhost:3000/channels/leave"}
				}],
				"webhook_secret": "{env.CHANNELS_WEBHOOK_SECRET}",
				"webhook_timeout": 3000000000
			}`,
		},
		{
			name: "declarative join with upstream events and leave",
			input: `channels {
				channel lobby {
					join allow
					handle_in * broadcast
					handle_in vote upstream http://127.0.0.1:3000/vote
					leave upstream https://app.internal/leave
				}
			}`,
			want: `{"channels": [{"pattern": "lobby", "join": {"action": "allow"},
				"handle_in": [
					{"event": "*", "action": "broadcast"},
					{"event": "vote", "action": "upstream", "upstream": "http://127.0.0.1:3000/vote"}
				],
				"leave": {"upstream": "https://app.internal/leave"}
			}]}`,
		},
		{
			name: "placeholder in an upstream URL path",
			input: `channels {
				connect upstream http://127.0.0.1:3000/{env.CONNECT_PATH}
				channel room:* {
					join upstream http://127.0.0.1:3000/{env.JOIN_PATH}
				}
			}`,
			want: `{
				"connect": {"action": "upstream", "upstream": "http://127.0.0.1:3000/{env.CONNECT_PATH}"},
				"channels": [{"pattern": "room:*", "join": {"action": "upstream", "upstream": "http://127.0.0.1:3000/{env.JOIN_PATH}"}}]
			}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := unmarshalTestfile(tt.input)
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			got, err := json.Marshal(h)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(tt.want)); err != nil {
				t.Fatalf("bad want JSON: %v", err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want.Bytes())
			}
			// What the Caddyfile accepts, provisioning must accept too.
			if _, err := channels.CompileRules(h.RulesSpec); err != nil {
				t.Errorf("CompileRules rejects the parsed rules: %v", err)
			}
			if _, err := channels.ParseOriginPolicy(h.CheckOrigin); err != nil {
				t.Errorf("ParseOriginPolicy rejects the parsed check_origin: %v", err)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		// want must appear in the error message.
		want string
		// line is the line the error must name.
		line int
	}{
		{
			name:  "directive argument",
			input: "channels /socket {\n}",
			want:  "wrong argument count",
			line:  1,
		},
		{
			name:  "drain argument",
			input: "channels {\n\tdrain 10 {\n\t}\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "drain unknown setting",
			input: "channels {\n\tdrain {\n\t\tsize 10\n\t}\n}",
			want:  `drain: unknown setting "size"`,
			line:  3,
		},
		{
			name:  "drain duplicate setting",
			input: "channels {\n\tdrain {\n\t\tbatch 10\n\t\tbatch 20\n\t}\n}",
			want:  `drain: duplicate "batch"`,
			line:  4,
		},
		{
			name:  "drain batch not positive",
			input: "channels {\n\tdrain {\n\t\tbatch 0\n\t}\n}",
			want:  `batch: invalid positive number "0"`,
			line:  3,
		},
		{
			name:  "drain interval not a duration",
			input: "channels {\n\tdrain {\n\t\tinterval soon\n\t}\n}",
			want:  `interval: invalid duration "soon"`,
			line:  3,
		},
		{
			name:  "longpoll unknown argument",
			input: "channels {\n\tlongpoll on\n}",
			want:  `longpoll: unknown argument "on"`,
			line:  2,
		},
		{
			name:  "longpoll off with settings",
			input: "channels {\n\tlongpoll off {\n\t\twindow 1s\n\t}\n}",
			want:  `longpoll off takes no settings`,
			line:  3,
		},
		{
			name:  "longpoll unknown setting",
			input: "channels {\n\tlongpoll {\n\t\tttl 1s\n\t}\n}",
			want:  `longpoll: unknown setting "ttl"`,
			line:  3,
		},
		{
			name:  "longpoll window not a duration",
			input: "channels {\n\tlongpoll {\n\t\twindow long\n\t}\n}",
			want:  `window: invalid duration "long"`,
			line:  3,
		},
		{
			name:  "longpoll secret without value",
			input: "channels {\n\tlongpoll {\n\t\tsecret\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "duplicate drain",
			input: "channels {\n\tdrain {\n\t}\n\tdrain {\n\t}\n}",
			want:  `duplicate "drain"`,
			line:  4,
		},
		{
			name:  "unknown subdirective",
			input: "channels {\n\tpath /socket\n\tbogus on\n}",
			want:  `unrecognized channels subdirective "bogus"`,
			line:  3,
		},
		{
			name:  "unknown channel subdirective",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow\n\t\tpart allow\n\t}\n}",
			want:  `unrecognized channel subdirective "part"`,
			line:  4,
		},
		{
			name:  "line counts skip comments and blank lines",
			input: "channels {\n\t# a comment\n\n\tpath /socket\n\n\t# another\n\tpaths /x\n}",
			want:  `unrecognized channels subdirective "paths"`,
			line:  7,
		},
		{
			name:  "duplicate path",
			input: "channels {\n\tpath /a\n\tpath /b\n}",
			want:  `duplicate "path"`,
			line:  3,
		},
		{
			name:  "duplicate connect",
			input: "channels {\n\tconnect allow\n\tconnect deny\n}",
			want:  `duplicate "connect"`,
			line:  3,
		},
		{
			name:  "duplicate id",
			input: "channels {\n\tid \"'a'\"\n\tid \"'b'\"\n}",
			want:  `duplicate "id"`,
			line:  3,
		},
		{
			name:  "duplicate check_origin",
			input: "channels {\n\tcheck_origin off\n\tcheck_origin conn\n}",
			want:  `duplicate "check_origin"`,
			line:  3,
		},
		{
			name:  "duplicate max_channels",
			input: "channels {\n\tmax_channels 1\n\tmax_channels 2\n}",
			want:  `duplicate "max_channels"`,
			line:  3,
		},
		{
			name:  "join twice in one channel",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow\n\t\tjoin deny\n\t}\n}",
			want:  "channel room:*: duplicate join",
			line:  4,
		},
		{
			name:  "duplicate handle_in event",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in ping reply\n\t\thandle_in ping broadcast\n\t}\n}",
			want:  "channel room:*: duplicate handle_in ping",
			line:  4,
		},
		{
			name:  "duplicate handle_in wildcard",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in * reply\n\t\thandle_in * noreply\n\t}\n}",
			want:  "channel room:*: duplicate handle_in *",
			line:  4,
		},
		{
			name:  "bad handle_in action",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in typing broadcastt\n\t}\n}",
			want:  `channel room:*: handle_in typing: unknown action "broadcastt"`,
			line:  3,
		},
		{
			name:  "handle_in without action",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in typing\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "handle_in extra argument",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in typing broadcast now\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "star inside pattern",
			input: "channels {\n\tchannel ro*om {\n\t}\n}",
			want:  `channel: invalid topic pattern "ro*om": * is only allowed as the last character`,
			line:  2,
		},
		{
			name:  "space in pattern",
			input: "channels {\n\tchannel \"a b\" {\n\t}\n}",
			want:  `channel: invalid topic pattern "a b": whitespace`,
			line:  2,
		},
		{
			name:  "channel without pattern",
			input: "channels {\n\tchannel {\n\t\tjoin allow\n\t}\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "channel with two patterns",
			input: "channels {\n\tchannel a:* b:* {\n\t}\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "connect CEL syntax error",
			input: "channels {\n\tconnect if \"params.token !=\"\n}",
			want:  `connect if: connect expression "params.token !=": ERROR: <input>:1:16: Syntax error`,
			line:  2,
		},
		{
			name:  "join CEL syntax error",
			input: "channels {\n\tchannel room:* {\n\t\tjoin if \"assigns.role ==\"\n\t}\n}",
			want:  `join if: join expression "assigns.role ==": ERROR: <input>:1:16: Syntax error`,
			line:  3,
		},
		{
			name:  "assign CEL syntax error",
			input: "channels {\n\tassign user_id \"params.\"\n}",
			want:  `assign user_id: assign expression "params.": ERROR: <input>:1:8: Syntax error`,
			line:  2,
		},
		{
			name:  "id CEL syntax error",
			input: "channels {\n\tid \"'user:' +\"\n}",
			want:  `id: id expression "'user:' +": ERROR: <input>:1:10: Syntax error`,
			line:  2,
		},
		{
			name:  "reply CEL syntax error",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow reply \"{'a': }\"\n\t}\n}",
			want:  `join reply: reply expression "{'a': }": ERROR: <input>:1:7: Syntax error`,
			line:  3,
		},
		{
			name:  "join CEL type error",
			input: "channels {\n\tchannel room:* {\n\t\tjoin if \"1 + 2\"\n\t}\n}",
			want:  `join if: join expression "1 + 2": result type is int, want bool`,
			line:  3,
		},
		{
			name:  "connect CEL type error",
			input: "channels {\n\tconnect if \"'yes'\"\n}",
			want:  `connect if: connect expression "'yes'": result type is string, want bool`,
			line:  2,
		},
		{
			name:  "id CEL type error",
			input: "channels {\n\tid \"42\"\n}",
			want:  `id: id expression "42": result type is int, want string or null`,
			line:  2,
		},
		{
			name:  "reply CEL type error",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow reply \"[1]\"\n\t}\n}",
			want:  `join reply: reply expression "[1]": result type is list(int), want map`,
			line:  3,
		},
		{
			name:  "topic in a connect expression",
			input: "channels {\n\tconnect if \"topic == 'lobby'\"\n}",
			want:  `connect if: connect expression "topic == 'lobby'": ERROR: <input>:1:1: undeclared reference to 'topic'`,
			line:  2,
		},
		{
			name:  "assigns in a connect expression",
			input: "channels {\n\tconnect if \"assigns.role == 'admin'\"\n}",
			want:  `undeclared reference to 'assigns'`,
			line:  2,
		},
		{
			name:  "headers in a join expression",
			input: "channels {\n\tchannel room:* {\n\t\tjoin if \"headers['x'] == 'y'\"\n\t}\n}",
			want:  `undeclared reference to 'headers'`,
			line:  3,
		},
		{
			name:  "subtopic in an assign expression",
			input: "channels {\n\tassign room \"subtopic\"\n}",
			want:  `assign room: assign expression "subtopic": ERROR: <input>:1:1: undeclared reference to 'subtopic'`,
			line:  2,
		},
		{
			name:  "deny with reply",
			input: "channels {\n\tchannel room:* {\n\t\tjoin deny \"no\" reply \"{}\"\n\t}\n}",
			want:  "join deny: reply is only allowed with allow or if",
			line:  3,
		},
		{
			name:  "deny without reason with reply",
			input: "channels {\n\tchannel room:* {\n\t\tjoin deny reply \"{}\"\n\t}\n}",
			want:  "join deny: reply is only allowed with allow or if",
			line:  3,
		},
		{
			name:  "deny with two reasons",
			input: "channels {\n\tchannel room:* {\n\t\tjoin deny \"no\" \"never\"\n\t}\n}",
			want:  `join deny: unexpected argument "never"`,
			line:  3,
		},
		{
			name:  "reply on connect",
			input: "channels {\n\tconnect if \"true\" reply \"{}\"\n}",
			want:  `connect if: unexpected argument "reply"`,
			line:  2,
		},
		{
			name:  "allow with a stray argument",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow everyone\n\t}\n}",
			want:  `join allow: unexpected argument "everyone"`,
			line:  3,
		},
		{
			name:  "connect allow with a stray argument",
			input: "channels {\n\tconnect allow everyone\n}",
			want:  `connect allow: unexpected argument "everyone"`,
			line:  2,
		},
		{
			name:  "reply without expression",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow reply\n\t}\n}",
			want:  "join allow reply: want exactly one expression",
			line:  3,
		},
		{
			name:  "reply with two expressions",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow reply \"{}\" \"{}\"\n\t}\n}",
			want:  "join allow reply: want exactly one expression",
			line:  3,
		},
		{
			name:  "unknown gate action",
			input: "channels {\n\tchannel room:* {\n\t\tjoin maybe\n\t}\n}",
			want:  `join: unknown action "maybe" (want allow, deny, if, upstream or jwt)`,
			line:  3,
		},
		{
			name:  "gate without action",
			input: "channels {\n\tconnect\n}",
			want:  `connect: want allow, deny [reason] or if "<expression>"`,
			line:  2,
		},
		{
			name:  "if without expression",
			input: "channels {\n\tchannel room:* {\n\t\tjoin if\n\t}\n}",
			want:  "join if: missing expression",
			line:  3,
		},
		{
			name:  "empty if expression",
			input: "channels {\n\tconnect if \"\"\n}",
			want:  `connect if: connect expression "": empty`,
			line:  2,
		},
		{
			name:  "check_origin entry without host",
			input: "channels {\n\tcheck_origin https://example.com https://\n}",
			want:  `check_origin: origin policy: entry "https://": origin has no host`,
			line:  2,
		},
		{
			name:  "check_origin off mixed with a list",
			input: "channels {\n\tcheck_origin https://example.com off\n}",
			want:  `check_origin: origin policy: "off" cannot be combined with other entries`,
			line:  2,
		},
		{
			name:  "check_origin conn mixed with a list",
			input: "channels {\n\tcheck_origin conn example.com\n}",
			want:  `check_origin: origin policy: "conn" cannot be combined with other entries`,
			line:  2,
		},
		{
			name:  "check_origin bad wildcard",
			input: "channels {\n\tcheck_origin https://*\n}",
			want:  `check_origin: origin policy: entry "https://*": "*" is only allowed as a leading "*." label`,
			line:  2,
		},
		{
			name:  "check_origin without arguments",
			input: "channels {\n\tcheck_origin\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "bad duration",
			input: "channels {\n\tidle_timeout soon\n}",
			want:  `idle_timeout: invalid duration "soon"`,
			line:  2,
		},
		{
			name:  "zero duration",
			input: "channels {\n\twrite_timeout 0s\n}",
			want:  `write_timeout: invalid duration "0s"`,
			line:  2,
		},
		{
			name:  "negative duration",
			input: "channels {\n\tidle_timeout -5s\n}",
			want:  `invalid duration "-5s"`,
			line:  2,
		},
		{
			name:  "bad size",
			input: "channels {\n\tmax_frame_size big\n}",
			want:  `max_frame_size: invalid size "big"`,
			line:  2,
		},
		{
			name:  "zero size",
			input: "channels {\n\tmax_queue_size 0\n}",
			want:  `max_queue_size: invalid size "0"`,
			line:  2,
		},
		{
			name:  "size above 1 TiB",
			input: "channels {\n\tmax_queue_size 2TiB\n}",
			want:  `invalid size "2TiB"`,
			line:  2,
		},
		{
			name:  "negative size",
			input: "channels {\n\tmax_frame_size -1\n}",
			want:  `invalid size "-1"`,
			line:  2,
		},
		{
			name:  "bad number",
			input: "channels {\n\tmax_channels lots\n}",
			want:  `max_channels: invalid positive number "lots"`,
			line:  2,
		},
		{
			name:  "fractional number",
			input: "channels {\n\tmax_channels 1.5\n}",
			want:  `invalid positive number "1.5"`,
			line:  2,
		},
		{
			name:  "zero number",
			input: "channels {\n\tmax_channels 0\n}",
			want:  `invalid positive number "0"`,
			line:  2,
		},
		{
			name:  "path without leading slash",
			input: "channels {\n\tpath socket\n}",
			want:  `path "socket" must start with /`,
			line:  2,
		},
		{
			name:  "duplicate channel pattern",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow\n\t}\n\tchannel room:* {\n\t\tjoin deny\n\t}\n}",
			want:  "duplicate channel room:*",
			line:  7,
		},
		{
			name:  "handle_in of a control event",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow\n\t\thandle_in phx_join broadcast\n\t}\n}",
			want:  "phx_join",
			line:  5,
		},
		{
			name:  "path without argument",
			input: "channels {\n\tpath\n}",
			want:  "wrong argument count or unexpected line ending after 'path'",
			line:  2,
		},
		{
			name:  "path with two arguments",
			input: "channels {\n\tpath /a /b\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "api_key without argument",
			input: "channels {\n\tapi_key\n}",
			want:  "wrong argument count or unexpected line ending after 'api_key'",
			line:  2,
		},
		{
			name:  "id without argument",
			input: "channels {\n\tid\n}",
			want:  "wrong argument count or unexpected line ending after 'id'",
			line:  2,
		},
		{
			name:  "assign without expression",
			input: "channels {\n\tassign user_id\n}",
			want:  "wrong argument count or unexpected line ending after 'user_id'",
			line:  2,
		},
		{
			name:  "assign with extra argument",
			input: "channels {\n\tassign user_id \"params.user\" again\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "timeout without argument",
			input: "channels {\n\tidle_timeout\n}",
			want:  "wrong argument count or unexpected line ending after 'idle_timeout'",
			line:  2,
		},
		{
			name:  "size without argument",
			input: "channels {\n\tmax_frame_size\n}",
			want:  "wrong argument count or unexpected line ending after 'max_frame_size'",
			line:  2,
		},
		{
			name:  "number with two arguments",
			input: "channels {\n\tmax_channels 1 2\n}",
			want:  "wrong argument count",
			line:  2,
		},
		{
			name:  "connect upstream without URL",
			input: "channels {\n\tconnect upstream\n}",
			want:  "connect upstream: missing URL",
			line:  2,
		},
		{
			name:  "connect upstream with two URLs",
			input: "channels {\n\tconnect upstream http://a.test/ http://b.test/\n}",
			want:  "connect upstream: want exactly one URL",
			line:  2,
		},
		{
			name:  "join upstream without URL",
			input: "channels {\n\tchannel room:* {\n\t\tjoin upstream\n\t}\n}",
			want:  "join upstream: missing URL",
			line:  3,
		},
		{
			name:  "join upstream with two URLs",
			input: "channels {\n\tchannel room:* {\n\t\tjoin upstream http://a.test/ http://b.test/\n\t}\n}",
			want:  "join upstream: want exactly one URL",
			line:  3,
		},
		{
			name:  "handle_in upstream without URL",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in new_msg upstream\n\t}\n}",
			want:  "channel room:*: handle_in new_msg upstream: missing URL",
			line:  3,
		},
		{
			name:  "handle_in upstream with two URLs",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in * upstream http://a.test/ http://b.test/\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "forward_headers on a join upstream",
			input: "channels {\n\tchannel room:* {\n\t\tjoin upstream http://a.test/ {\n\t\t\tforward_headers Cookie\n\t\t}\n\t}\n}",
			want:  `join upstream: unrecognized subdirective "forward_headers"`,
			line:  4,
		},
		{
			name:  "forward_headers without names",
			input: "channels {\n\tconnect upstream http://a.test/ {\n\t\tforward_headers\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "unknown subdirective in connect upstream",
			input: "channels {\n\tconnect upstream http://a.test/ {\n\t\tforward_header Cookie\n\t}\n}",
			want:  `connect upstream: unrecognized subdirective "forward_header"`,
			line:  3,
		},
		{
			name:  "leave without upstream",
			input: "channels {\n\tchannel room:* {\n\t\tleave\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "leave with a URL but no upstream keyword",
			input: "channels {\n\tchannel room:* {\n\t\tleave http://a.test/\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "leave with another keyword",
			input: "channels {\n\tchannel room:* {\n\t\tleave allow http://a.test/\n\t}\n}",
			want:  `channel room:*: leave: want upstream <url>, got "allow"`,
			line:  3,
		},
		{
			name:  "leave upstream with two URLs",
			input: "channels {\n\tchannel room:* {\n\t\tleave upstream http://a.test/ http://b.test/\n\t}\n}",
			want:  "wrong argument count",
			line:  3,
		},
		{
			name:  "duplicate leave",
			input: "channels {\n\tchannel room:* {\n\t\tleave upstream http://a.test/\n\t\tleave upstream http://b.test/\n\t}\n}",
			want:  "channel room:*: duplicate leave",
			line:  4,
		},
		{
			name:  "join upstream with a reply",
			input: "channels {\n\tchannel room:* {\n\t\tjoin upstream http://a.test/ reply \"{'x': 1}\"\n\t}\n}",
			want:  "join upstream:",
			line:  3,
		},
		{
			name:  "duplicate webhook_secret",
			input: "channels {\n\twebhook_secret a\n\twebhook_secret b\n}",
			want:  `duplicate "webhook_secret"`,
			line:  3,
		},
		{
			name:  "bad webhook_timeout",
			input: "channels {\n\twebhook_timeout soon\n}",
			want:  `webhook_timeout: invalid duration "soon"`,
			line:  2,
		},
		{
			name:  "webhook_secret without argument",
			input: "channels {\n\twebhook_secret\n}",
			want:  "wrong argument count or unexpected line ending after 'webhook_secret'",
			line:  2,
		},
		{
			name:  "non-http connect upstream URL",
			input: "channels {\n\tconnect upstream ftp://a.test/connect\n\tpath /socket\n}",
			want:  `upstream URL "ftp://a.test/connect" must be an absolute http:// or https:// URL`,
			line:  2,
		},
		{
			name:  "non-http join upstream URL",
			input: "channels {\n\tchannel room:* {\n\t\tjoin upstream ftp://a.test/join\n\t\thandle_in ping reply\n\t}\n}",
			want:  `upstream URL "ftp://a.test/join" must be an absolute http:// or https:// URL`,
			line:  3,
		},
		{
			name:  "non-http handle_in upstream URL",
			input: "channels {\n\tchannel room:* {\n\t\thandle_in * upstream ws://a.test/event\n\t\tjoin allow\n\t}\n}",
			want:  `upstream URL "ws://a.test/event" must be an absolute http:// or https:// URL`,
			line:  3,
		},
		{
			name:  "leave upstream URL without scheme",
			input: "channels {\n\tchannel room:* {\n\t\tleave upstream localhost:3000/leave\n\t\tjoin allow\n\t}\n}",
			want:  `upstream URL "localhost:3000/leave" must be an absolute http:// or https:// URL`,
			line:  3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := unmarshalTestfile(tt.input)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not contain %q", msg, tt.want)
			}
			if at := fmt.Sprintf(", at Testfile:%d", tt.line); !strings.HasSuffix(msg, at) {
				t.Errorf("error %q does not end with %q", msg, at)
			}
		})
	}
}

// TestUnmarshalCaddyfileUpstreamPlaceholders checks that upstream URLs made
// of placeholders are kept verbatim by the parser (they are replaced and
// validated when the config is provisioned), and that the rest of their
// channel is still checked.
func TestUnmarshalCaddyfileUpstreamPlaceholders(t *testing.T) {
	t.Parallel()
	input := `channels {
		connect upstream {env.APP_URL}/socket/connect
		channel room:* {
			join upstream {env.APP_URL}/channels/join
			handle_in * upstream {env.APP_URL}/channels/event
			leave upstream {env.APP_URL}/channels/leave
		}
	}`
	h, err := unmarshalTestfile(input)
	if err != nil {
		t.Fatalf("UnmarshalCaddyfile: %v", err)
	}
	got, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"connect":{"action":"upstream","upstream":"{env.APP_URL}/socket/connect"},` +
		`"channels":[{"pattern":"room:*","join":{"action":"upstream","upstream":"{env.APP_URL}/channels/join"},` +
		`"handle_in":[{"event":"*","action":"upstream","upstream":"{env.APP_URL}/channels/event"}],` +
		`"leave":{"upstream":"{env.APP_URL}/channels/leave"}}]}`
	if string(got) != want {
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
	// Once the placeholder is known, the rules compile.
	spec := h.RulesSpec.MapUpstreams(func(u string) string {
		return strings.ReplaceAll(u, "{env.APP_URL}", "http://127.0.0.1:3000")
	})
	if _, err := channels.CompileRules(spec); err != nil {
		t.Errorf("CompileRules with the placeholder replaced: %v", err)
	}

	// A placeholder URL does not hide the other errors of its channel.
	_, err = unmarshalTestfile("channels {\n\tchannel room:* {\n\t\tjoin upstream {env.APP_URL}/join\n\t\thandle_in phx_leave broadcast\n\t}\n}")
	if err == nil || !strings.Contains(err.Error(), "phx_leave") {
		t.Errorf("error %v, want one naming phx_leave", err)
	}
}
