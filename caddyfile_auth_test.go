package caddychannels

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-channels/caddy-channels/channels"
)

func TestUnmarshalCaddyfileAuthAndLimits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, input, want string }{
		{
			name: "auth jwt, every setting",
			input: "channels {\n\tauth jwt {\n\t\tkey {env.A}\n\t\tkey old\n\t\tpublic_key /etc/a.pem\n\t\tjwks_url https://id.example.com/jwks.json\n" +
				"\t\tjwks_refresh 10m\n\t\tissuer https://id.example.com/\n\t\taudience chat\n\t\talgorithms HS256 ES256\n\t\tleeway 30s\n" +
				"\t\ttoken \"headers['x-token']\"\n\t\texpire off\n\t}\n}",
			want: `{"auth":{"jwt":{"keys":["{env.A}","old"],"public_keys":["/etc/a.pem"],"jwks_url":"https://id.example.com/jwks.json",
				"jwks_refresh":600000000000,"issuer":"https://id.example.com/","audience":"chat","algorithms":["HS256","ES256"],
				"leeway":30000000000,"token":"headers['x-token']","keep_past_expiry":true}}}`,
		},
		{
			name:  "limits",
			input: "channels {\n\tlimit messages 20/1s burst 40\n\tlimit joins 5/s\n\tlimit connects 10/1m per ip\n\tlimit flood_factor 4\n\tmax_sockets_per_ip 50\n\tmax_sockets_per_id 5\n}",
			want: `{"limits":{"messages":"20/1s","messages_burst":40,"joins":"5/s","flood_factor":4,"connects_per_ip":"10/1m",
				"max_sockets_per_ip":50,"max_sockets_per_id":5}}`,
		},
		{
			name:  "handle_in limit",
			input: "channels {\n\tchannel room:* {\n\t\tjoin allow\n\t\thandle_in typing broadcast_from limit 2/1s\n\t\thandle_in save upstream http://app/save limit 1/1m\n\t}\n}",
			want: `{"channels":[{"pattern":"room:*","join":{"action":"allow"},"handle_in":[{"event":"typing","action":"broadcast_from","limit":"2/1s"},
				{"event":"save","action":"upstream","upstream":"http://app/save","limit":"1/1m"}]}]}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := unmarshalTestfile(tt.input)
			if err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			got, _ := json.Marshal(h)
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(tt.want)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want.Bytes())
			}
			if _, err := h.Limits.config(); err != nil {
				t.Errorf("parsed limits do not provision: %v", err)
			}
			if _, err := channels.CompileRules(h.RulesSpec); err != nil {
				t.Errorf("parsed rules do not compile: %v", err)
			}
		})
	}
}

func TestUnmarshalCaddyfileAuthAndLimitsErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, input, want string }{
		{"auth without method", "channels {\n\tauth {\n\t}\n}", "auth: missing method"},
		{"auth unknown method", "channels {\n\tauth basic {\n\t}\n}", `unknown method "basic"`},
		{"auth jwt without key", "channels {\n\tauth jwt {\n\t\tissuer x\n\t}\n}", "no key"},
		{"auth jwt unknown setting", "channels {\n\tauth jwt {\n\t\tkey a\n\t\tsecret b\n\t}\n}", `unknown setting "secret"`},
		{"auth jwt duplicate issuer", "channels {\n\tauth jwt {\n\t\tkey a\n\t\tissuer x\n\t\tissuer y\n\t}\n}", `duplicate "issuer"`},
		{"auth jwt bad token expression", "channels {\n\tauth jwt {\n\t\tkey a\n\t\ttoken \"claims.sub\"\n\t}\n}", "token:"},
		{"auth jwt expire on", "channels {\n\tauth jwt {\n\t\tkey a\n\t\texpire on\n\t}\n}", "want off"},
		{"auth jwt bad jwks url", "channels {\n\tauth jwt {\n\t\tjwks_url id.example.com/jwks\n\t}\n}", "jwks_url"},
		{"duplicate auth", "channels {\n\tauth jwt {\n\t\tkey a\n\t}\n\tauth jwt {\n\t\tkey b\n\t}\n}", `duplicate "auth"`},
		{"limit without kind", "channels {\n\tlimit\n}", "missing kind"},
		{"limit unknown kind", "channels {\n\tlimit bytes 10/1s\n}", `unknown kind "bytes"`},
		{"limit bad rate", "channels {\n\tlimit messages 10\n}", "want <n>/<duration>"},
		{"limit zero rate", "channels {\n\tlimit messages 0/1s\n}", "positive"},
		{"limit burst below rate", "channels {\n\tlimit messages 10/1s burst 5\n}", "at least 10"},
		{"limit trailing word", "channels {\n\tlimit joins 10/1s per ip\n}", `unexpected "per"`},
		{"limit connects without per ip", "channels {\n\tlimit connects 10/1s\n}", "per ip"},
		{"duplicate limit", "channels {\n\tlimit messages 1/s\n\tlimit messages 2/s\n}", "duplicate limit messages"},
		{"flood factor 1", "channels {\n\tlimit flood_factor 1\n}", "at least 2"},
		{"max_sockets_per_ip zero", "channels {\n\tmax_sockets_per_ip 0\n}", "invalid positive number"},
		{"handle_in bad limit", "channels {\n\tchannel a {\n\t\thandle_in x broadcast limit fast\n\t}\n}", "limit:"},
		{"handle_in limit without rate", "channels {\n\tchannel a {\n\t\thandle_in x broadcast limit\n\t}\n}", "missing <n>/<duration>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := unmarshalTestfile(tt.input); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// Provisioning the auth block builds a real verifier: keys from
// placeholders, PEM files read, mistakes reported with their setting.
func TestAuthConfig(t *testing.T) {
	t.Setenv("CHANNELS_TEST_JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!")
	repl := caddy.NewReplacer()
	ctx := context.Background()
	cfg, closeFn, err := (&Auth{JWT: &JWT{Keys: []string{"{env.CHANNELS_TEST_JWT_SECRET}"}, Token: "params.t"}}).config(ctx, repl, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if cfg.Verifier == nil || cfg.Token == nil {
		t.Fatalf("verifier %v, token %v", cfg.Verifier, cfg.Token)
	}
	if _, _, err := cfg.Verifier.Verify(ctx, "not.a.token"); err == nil {
		t.Fatal("garbage verified")
	}
	if off, _, err := (*Auth)(nil).config(ctx, repl, zap.NewNop()); err != nil || off.Verifier != nil {
		t.Fatalf("no auth block: %v %v", off, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		jwt  JWT
		want string
	}{
		{JWT{Keys: []string{"{env.CHANNELS_TEST_UNSET_VAR}"}}, "key #1 is empty"},
		{JWT{PublicKeys: []string{bad}}, "bad.pem"},
		{JWT{PublicKeys: []string{filepath.Join(t.TempDir(), "missing.pem")}}, "missing.pem"},
		{JWT{Keys: []string{"k"}, Algorithms: []string{"none"}}, "none"},
		{JWT{Keys: []string{"k"}, Algorithms: []string{"RS256"}}, "RS256"},
		{JWT{Keys: []string{"k"}, Leeway: caddy.Duration(-time.Second)}, "negative"},
	} {
		if _, _, err := (&Auth{JWT: &c.jwt}).config(ctx, repl, zap.NewNop()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.jwt, err, c.want)
		}
	}
}

func TestLimitsConfig(t *testing.T) {
	got, err := (&Limits{Messages: "20/1s", MessagesBurst: 40, Joins: "5/s", ConnectsPerIP: "10/1m", MaxSocketsPerIP: 3}).config()
	if err != nil {
		t.Fatal(err)
	}
	want := channels.LimitsConfig{
		Messages:        channels.Rate{N: 20, Per: time.Second, Burst: 40},
		Joins:           channels.Rate{N: 5, Per: time.Second},
		ConnectsPerIP:   channels.Rate{N: 10, Per: time.Minute},
		MaxSocketsPerIP: 3,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, l := range []Limits{{MessagesBurst: 3}, {Messages: "5/s", MessagesBurst: 2}, {MaxSocketsPerID: -1}, {FloodFactor: 1}, {Joins: "x"}} {
		if _, err := l.config(); err == nil {
			t.Errorf("%+v provisioned", l)
		}
	}
}

func TestUnmarshalCaddyfileJoinJWT(t *testing.T) {
	t.Parallel()
	for _, input := range []string{
		"channels {\n\tchannel room:* {\n\t\tjoin jwt token \"params.t\" if \"join_claims.role == 'mod'\" reply \"{'r': join_claims.role}\"\n\t}\n}",
		"channels {\n\tchannel room:* {\n\t\tjoin jwt {\n\t\t\ttoken \"params.t\"\n\t\t\tif \"join_claims.role == 'mod'\"\n\t\t\treply \"{'r': join_claims.role}\"\n\t\t}\n\t}\n}",
	} {
		h, err := unmarshalTestfile(input)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(h.Channels[0].Join)
		if want := `{"action":"jwt","expr":"join_claims.role == 'mod'","reply":"{'r': join_claims.role}","token":"params.t"}`; string(got) != want {
			t.Errorf("%q:\n got %s\nwant %s", input, got, want)
		}
		if _, err := channels.CompileRules(h.RulesSpec); err != nil {
			t.Errorf("does not compile: %v", err)
		}
	}
	h, err := unmarshalTestfile("channels {\n\tchannel room:* {\n\t\tjoin jwt\n\t}\n}")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := channels.CompileRules(h.RulesSpec)
	if err != nil || rules.Channels[0].Join.Token.String() != channels.DefaultJoinToken {
		t.Fatalf("bare join jwt: %v %v", rules, err)
	}
	for _, c := range []struct{ input, want string }{
		{"channels {\n\tchannel a {\n\t\tjoin jwt token\n\t}\n}", `"token" needs a value`},
		{"channels {\n\tchannel a {\n\t\tjoin jwt audience x\n\t}\n}", `unknown setting "audience"`},
		{"channels {\n\tchannel a {\n\t\tjoin jwt token params.a token params.b\n\t}\n}", `duplicate "token"`},
		{"channels {\n\tchannel a {\n\t\tjoin jwt token \"headers.x\"\n\t}\n}", "join jwt token"},
		{"channels {\n\tconnect jwt\n}", "only a channel's join"},
	} {
		if _, err := unmarshalTestfile(c.input); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.input, err, c.want)
		}
	}
}
