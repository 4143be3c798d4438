package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"
)

// TLS flags: with a certificate (-tls-cert and -tls-key, PEM files) or
// -tls-self-signed, the ceiling serves https and wss only, HTTP/1.1 (as the
// WebSocket upgrade and the load tool's API requests use it).
var (
	tlsCert       = flag.String("tls-cert", "", "serve TLS with this PEM certificate (needs -tls-key)")
	tlsKey        = flag.String("tls-key", "", "PEM private key of -tls-cert")
	tlsSelfSigned = flag.Bool("tls-self-signed", false, "serve TLS with a fresh self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost (clients: -insecure)")
)

// serve runs srv over TLS when a TLS flag is set, plain HTTP otherwise.
func serve(srv *http.Server) error {
	conf, err := serverTLS(*tlsCert, *tlsKey, *tlsSelfSigned)
	if err != nil {
		return err
	}
	if conf == nil {
		return srv.ListenAndServe()
	}
	srv.TLSConfig = conf
	return srv.ListenAndServeTLS("", "")
}

// serverTLS returns the TLS configuration the flags ask for, or nil for
// plain HTTP.
func serverTLS(certFile, keyFile string, selfSigned bool) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	switch {
	case selfSigned && certFile != "":
		return nil, errors.New("-tls-self-signed and -tls-cert exclude each other")
	case selfSigned:
		cert, err = selfSignedCert()
	case certFile != "" || keyFile != "":
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}, nil
}

// selfSignedCert makes an ECDSA P-256 certificate (the key type of Caddy's
// "tls internal" leaf certificates) valid for a day for 127.0.0.1, ::1 and
// localhost.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bench-ceiling"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tlsBatchBufs holds the coalescing buffers of writeBatch.
var tlsBatchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// writeBatch writes a socket's queued frames. On plain TCP that is one
// writev; a *tls.Conn has no writev and would seal one TLS record (and make
// one write) per frame, so the frames are copied into one buffer and
// written at once: one record per 16 KiB, as a real server should.
func writeBatch(nc net.Conn, bufs *net.Buffers) (int64, error) {
	tc, ok := nc.(*tls.Conn)
	if !ok || len(*bufs) < 2 {
		return bufs.WriteTo(nc)
	}
	bp := tlsBatchBufs.Get().(*[]byte)
	b := (*bp)[:0]
	for _, f := range *bufs {
		b = append(b, f...)
	}
	*bufs = nil
	n, err := tc.Write(b)
	if cap(b) <= 1<<20 {
		*bp = b[:0]
		tlsBatchBufs.Put(bp)
	}
	return int64(n), err
}
