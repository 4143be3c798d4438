package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
)

// minRSABits is the smallest RSA modulus accepted from a key file; crypto/rsa
// refuses to verify with smaller keys anyway. Keys below warnRSABits are
// accepted with a warning.
const (
	minRSABits  = 1024
	warnRSABits = 2048
	// warnSecretBytes is the HMAC secret length below which a warning is
	// logged (RFC 7518 section 3.2 asks for at least the hash size).
	warnSecretBytes = 32
)

// staticKeys holds the keys known at start: HMAC secrets and the public keys
// read from PEM files.
type staticKeys struct {
	secrets [][]byte
	public  []any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// loadStaticKeys copies the secrets and reads every public key file.
func loadStaticKeys(secrets [][]byte, files []string, log *zap.Logger) (staticKeys, error) {
	var ks staticKeys
	for i, s := range secrets {
		if len(s) == 0 {
			return staticKeys{}, fmt.Errorf("jwtauth: secret %d: empty", i)
		}
		if len(s) < warnSecretBytes {
			log.Warn("jwtauth: HMAC secret is short; use at least 32 random bytes",
				zap.Int("secret", i), zap.Int("bytes", len(s)))
		}
		ks.secrets = append(ks.secrets, append([]byte(nil), s...))
	}
	for _, path := range files {
		keys, err := readPublicKeyFile(path)
		if err != nil {
			return staticKeys{}, fmt.Errorf("jwtauth: public_key %s: %w", path, err)
		}
		for _, k := range keys {
			if rk, ok := k.(*rsa.PublicKey); ok && rk.N.BitLen() < warnRSABits {
				log.Warn("jwtauth: RSA public key is weaker than 2048 bits",
					zap.String("file", path), zap.Int("bits", rk.N.BitLen()))
			}
		}
		ks.public = append(ks.public, keys...)
	}
	return ks, nil
}

// forAlgorithm returns the static keys that tokens signed with alg may be
// checked against: the secrets for HMAC, public keys of the right family and
// curve otherwise.
func (ks staticKeys) forAlgorithm(alg algorithm) []jwt.VerificationKey {
	var keys []jwt.VerificationKey
	if !alg.asymmetric() {
		for _, s := range ks.secrets {
			keys = append(keys, s)
		}
		return keys
	}
	for _, k := range ks.public {
		if alg.fits(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// readPublicKeyFile reads every public key in a PEM file.
func readPublicKeyFile(path string) ([]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePublicKeysPEM(data)
}

// parsePublicKeysPEM decodes every PEM block of data into a public key. It
// accepts PKIX "PUBLIC KEY", PKCS #1 "RSA PUBLIC KEY" and "CERTIFICATE"
// blocks, skips "EC PARAMETERS", and refuses private keys and anything else.
func parsePublicKeysPEM(data []byte) ([]any, error) {
	var keys []any
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		key, err := parsePEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		if key != nil {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM-encoded public key or certificate found")
	}
	return keys, nil
}

// parsePEMBlock returns the public key in one PEM block, or nil for a block
// that carries no key and may be skipped.
func parsePEMBlock(block *pem.Block) (any, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			key = cert.PublicKey
		}
	case "EC PARAMETERS":
		return nil, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, errors.New("is a private key; configure the public key only")
	default:
		return nil, errors.New("unsupported PEM block type; want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE")
	}
	if err != nil {
		return nil, err
	}
	return checkPublicKey(key)
}

// checkPublicKey accepts the key types and sizes this package verifies with.
func checkPublicKey(key any) (any, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return nil, fmt.Errorf("RSA key has %d bits; at least %d are required", bits, minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		switch name := k.Curve.Params().Name; name {
		case "P-256", "P-384", "P-521":
			return k, nil
		default:
			return nil, fmt.Errorf("ECDSA curve %s is not supported; want P-256, P-384 or P-521", name)
		}
	case ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T; want RSA, ECDSA or Ed25519", key)
	}
}
