package caddychannels

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// engineCase is one `pubsub` engine block and what it must give: the
// engine's JSON for a valid block, a piece of the error for a bad one.
type engineCase struct{ input, want string }

// caddyfileEngine is a pubsub engine module as its Caddyfile tests see it:
// a pointer to the module's struct.
type caddyfileEngine[T any] interface {
	*T
	caddyfile.Unmarshaler
}

// checkEngineParses parses each case into a fresh engine, compares its
// JSON with the case's, and hands the engine to valid, which must accept
// it (the broker's own option checks).
func checkEngineParses[T any, P caddyfileEngine[T]](t *testing.T, cases []engineCase, valid func(P) error) {
	t.Helper()
	for _, tc := range cases {
		e := P(new(T))
		if err := e.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
			t.Errorf("%q: %v", tc.input, err)
			continue
		}
		got, _ := json.Marshal(e)
		if string(got) != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.input, got, tc.want)
		}
		if err := valid(e); err != nil {
			t.Errorf("%q: options rejected: %v", tc.input, err)
		}
	}
}

// checkEngineRefuses parses each case into a fresh engine and wants an
// error containing the case's text.
func checkEngineRefuses[T any, P caddyfileEngine[T]](t *testing.T, cases []engineCase) {
	t.Helper()
	for _, tc := range cases {
		err := P(new(T)).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.input, err, tc.want)
		}
	}
}
