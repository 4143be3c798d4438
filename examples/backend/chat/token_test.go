package chat

import (
	"strings"
	"testing"
	"time"
)

func TestTokenLifetime(t *testing.T) {
	a := New("secret", nil)
	issued := time.Unix(1767225600, 0)
	a.now = func() time.Time { return issued }
	token, err := a.IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := "YWxpY2U.1767312000."; !strings.HasPrefix(token, want) {
		t.Fatalf("token %q does not start with %q", token, want)
	}
	cases := []struct {
		name    string
		at      time.Time
		wantErr string
	}{
		{"just issued", issued, ""},
		{"a second before expiry", issued.Add(TokenTTL - time.Second), ""},
		{"at expiry", issued.Add(TokenTTL), "token expired"},
		{"later", issued.Add(48 * time.Hour), "token expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.now = func() time.Time { return tc.at }
			name, err := a.verifyToken(token)
			if tc.wantErr == "" {
				if err != nil || name != "alice" {
					t.Errorf("got %q, %v; want alice", name, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("got %q, %v; want error %q", name, err, tc.wantErr)
			}
		})
	}
}

func TestVerifyTokenRejects(t *testing.T) {
	a := New("secret", nil)
	good, err := a.IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	resign := func(claims string) string { return claims + "." + b64(a.tokenMAC(claims)) }
	cases := []struct {
		name, token, wantErr string
	}{
		{"empty", "", "no token"},
		{"no dot", "abc", "malformed token"},
		{"bad signature encoding", parts[0] + "." + parts[1] + ".!!", "token signature does not match"},
		{"newline in the signature", parts[0] + "." + parts[1] + "." + parts[2][:5] + "\n" + parts[2][5:], "token signature does not match"},
		{"other expiry", parts[0] + ".9999999999." + parts[2], "token signature does not match"},
		{"signed claims without expiry", resign(parts[0]), "malformed token claims"},
		{"signed claims with a bad expiry", resign(parts[0] + ".soon"), `parsing token expiry: strconv.ParseInt: parsing "soon": invalid syntax`},
		{"signed bad name encoding", resign("!!.9999999999"), "decoding token name: illegal base64 data at input byte 0"},
		{"signed invalid name", resign(b64([]byte("a b")) + ".9999999999"), `token name: name may only contain letters, digits, '_', '-' and '.', got "a b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name, err := a.verifyToken(tc.token)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("got %q, %v; want error %q", name, err, tc.wantErr)
			}
		})
	}
}

func TestInsecureAppsUseRandomTokenKeys(t *testing.T) {
	token, err := New("", nil).IssueToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New("", nil).verifyToken(token); err == nil {
		t.Error("a token of one insecure app passed another's check")
	}
}
