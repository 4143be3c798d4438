package channels

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestExtractAuthToken(t *testing.T) {
	tests := []struct {
		name      string
		protocols []string
		wantToken string
		wantFound bool
	}{
		{"phoenix.js 1234", []string{"phoenix", "base64url.bearer.phx.MTIzNA"}, "1234", true},
		{"phoenix.js 5678", []string{"phoenix", "base64url.bearer.phx.NTY3OA"}, "5678", true},
		{"token first", []string{"base64url.bearer.phx.MTIzNA", "phoenix"}, "1234", true},
		{"padded", []string{"phoenix", "base64url.bearer.phx.MTIzNA=="}, "1234", true},
		{"one pad", []string{"base64url.bearer.phx.MTIzNDU="}, "12345", true},
		{"std alphabet", []string{"base64url.bearer.phx.+/+/"}, "\xfb\xff\xbf", true},
		{"url alphabet", []string{"base64url.bearer.phx.-_-_"}, "\xfb\xff\xbf", true},
		{"std padded", []string{"base64url.bearer.phx.+/8="}, "\xfb\xff", true},
		{"url unpadded", []string{"base64url.bearer.phx.-_8"}, "\xfb\xff", true},
		{"ascii with slash", []string{"base64url.bearer.phx.YT9iPg"}, "a?b>", true},
		{"empty token", []string{"phoenix", "base64url.bearer.phx."}, "", true},
		{"absent", []string{"phoenix"}, "", false},
		{"no protocols", nil, "", false},
		{"prefix is case-sensitive", []string{"Base64url.bearer.phx.MTIzNA"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, found, err := ExtractAuthToken(tt.protocols)
			if err != nil {
				t.Fatalf("ExtractAuthToken(%q) error: %v", tt.protocols, err)
			}
			if token != tt.wantToken || found != tt.wantFound {
				t.Fatalf("ExtractAuthToken(%q) = %q, %v; want %q, %v", tt.protocols, token, found, tt.wantToken, tt.wantFound)
			}
		})
	}
}

func TestExtractAuthTokenErrors(t *testing.T) {
	tests := []struct {
		name      string
		protocols []string
		wantErr   string
	}{
		{"two tokens", []string{"phoenix", "base64url.bearer.phx.MTIzNA", "base64url.bearer.phx.NTY3OA"}, "more than one"},
		{"bad length", []string{"base64url.bearer.phx.MTIzN"}, "decode base64"},
		{"bad char", []string{"base64url.bearer.phx.MT!zNA"}, "invalid base64 character"},
		{"newline", []string{"base64url.bearer.phx.MTIz\nNA"}, "invalid base64 character"},
		{"mixed alphabets", []string{"base64url.bearer.phx.+/-_"}, "mixed"},
		{"too much padding", []string{"base64url.bearer.phx.MTIz===="}, "padding"},
		{"wrong padding", []string{"base64url.bearer.phx.MTIzNA="}, "padding"},
		{"padding only", []string{"base64url.bearer.phx.=="}, "padding"},
		{"inner padding", []string{"base64url.bearer.phx.MT=zNA"}, "invalid base64 character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, found, err := ExtractAuthToken(tt.protocols)
			if err == nil {
				t.Fatalf("ExtractAuthToken(%q) = %q, %v; want error containing %q", tt.protocols, token, found, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || found || token != "" {
				t.Fatalf("ExtractAuthToken(%q) = %q, %v, %q; want error containing %q", tt.protocols, token, found, err, tt.wantErr)
			}
		})
	}
}

// TestExtractAuthTokenRoundTrip encodes tokens the way phoenix.js does
// (standard base64, "=" stripped) and the URL-safe way.
func TestExtractAuthTokenRoundTrip(t *testing.T) {
	for _, tok := range []string{"", "a", "ab", "abc", "user-token.with?odd>chars~", "\x00\xff\xfe binary"} {
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding} {
			proto := AuthTokenProtocolPrefix + enc.EncodeToString([]byte(tok))
			got, found, err := ExtractAuthToken([]string{"phoenix", proto})
			if err != nil || !found || got != tok {
				t.Errorf("ExtractAuthToken(%q) = %q, %v, %v; want %q", proto, got, found, err, tok)
			}
		}
	}
}

func FuzzAuthToken(f *testing.F) {
	f.Add("phoenix", "base64url.bearer.phx.MTIzNA")
	f.Add("base64url.bearer.phx.+/8=", "")
	f.Add("base64url.bearer.phx.-_8", "phoenix")
	f.Add("base64url.bearer.phx.a", "base64url.bearer.phx.b")
	f.Add("base64url.bearer.phx.MTIz====", "x")
	f.Fuzz(func(t *testing.T, p1, p2 string) {
		token, found, err := ExtractAuthToken([]string{p1, p2})
		if err != nil {
			if found || token != "" {
				t.Fatalf("error %v with token %q found %v", err, token, found)
			}
			return
		}
		if !found {
			if token != "" {
				t.Fatalf("token %q without found", token)
			}
			return
		}
		// Re-encoding the token must give back the entry's payload up to
		// alphabet and padding.
		enc := p1
		if !strings.HasPrefix(enc, AuthTokenProtocolPrefix) {
			enc = p2
		}
		enc = strings.TrimRight(strings.TrimPrefix(enc, AuthTokenProtocolPrefix), "=")
		enc = strings.NewReplacer("-", "+", "_", "/").Replace(enc)
		again, err := base64.RawStdEncoding.DecodeString(enc)
		if err != nil || string(again) != token {
			t.Fatalf("token %q does not match its encoding %q (%v)", token, enc, err)
		}
	})
}
