package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// clientTLS returns the TLS configuration of every wss:// dial and https://
// request of a run: the system roots, or only the CA certificates in the PEM
// file caFile (e.g. the root of Caddy's "tls internal" authority, under its
// storage at pki/authorities/local/root.crt), or no verification at all with
// insecure. It returns nil when neither is set (Go's defaults apply).
func clientTLS(caFile string, insecure bool) (*tls.Config, error) {
	if caFile == "" && !insecure {
		return nil, nil
	}
	conf := &tls.Config{InsecureSkipVerify: insecure} //nolint:gosec // -insecure is the user's explicit choice
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca %s: no PEM certificate found", caFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}
