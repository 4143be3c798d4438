package chat

import (
	"testing"
	"time"
)

// The signature test vector and the login token printed in
// docs/webhooks.md, for the secret "example-secret".
const (
	docSecret    = "example-secret"
	docTimestamp = 1767225600
	docToken     = "YWxpY2U.1767312000.EmUijqlESaKa8j5ql4YNqSXwI-PPGIosPQo9UomVJ0s"
	docBody      = `{"socket":{"id":null,"transport":"websocket","vsn":"2.0.0","remote_ip":"203.0.113.7","assigns":{}},"params":{"token":"` + docToken + `","vsn":"2.0.0"},"headers":{"user-agent":"Mozilla/5.0"},"auth_token":null}`
	docSignature = "t=1767225600,v1=0c794f85ce98c6b8408d0595ebaa21fda2014ad62c48a4d7540cbc141c938032"
)

func TestDocumentedVectors(t *testing.T) {
	at := time.Unix(docTimestamp, 0)
	if err := VerifySignature([]byte(docSecret), docSignature, []byte(docBody), at); err != nil {
		t.Errorf("documented signature refused: %v", err)
	}
	a := New(docSecret, nil)
	a.now = func() time.Time { return at }
	token, err := a.IssueToken("alice")
	if err != nil || token != docToken {
		t.Errorf("IssueToken(alice) = %q, %v; want %q", token, err, docToken)
	}
}
