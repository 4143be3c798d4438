package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"slices"
)

// family is a kind of key; an algorithm is only ever checked against keys of
// its own family.
type family uint8

const (
	familyHMAC family = iota + 1
	familyRSA
	familyECDSA
	familyEd25519
)

// algorithm describes one JWS algorithm this package accepts.
type algorithm struct {
	family family
	curve  string // for ECDSA: the curve the key must be on (crypto/elliptic name)
}

// algorithms is every JWS algorithm that can be allowed, by its "alg" name.
// "none" is deliberately absent.
var algorithms = map[string]algorithm{
	"HS256": {family: familyHMAC},
	"HS384": {family: familyHMAC},
	"HS512": {family: familyHMAC},
	"RS256": {family: familyRSA},
	"RS384": {family: familyRSA},
	"RS512": {family: familyRSA},
	"PS256": {family: familyRSA},
	"PS384": {family: familyRSA},
	"PS512": {family: familyRSA},
	"ES256": {family: familyECDSA, curve: "P-256"},
	"ES384": {family: familyECDSA, curve: "P-384"},
	"ES512": {family: familyECDSA, curve: "P-521"},
	"EdDSA": {family: familyEd25519},
}

// algorithmOrder lists the algorithms in a stable order for defaults and
// messages.
var algorithmOrder = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// asymmetric reports whether a is verified with a public key.
func (a algorithm) asymmetric() bool { return a.family != familyHMAC }

// fits reports whether key is a public key that a may be verified with.
func (a algorithm) fits(key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return a.family == familyRSA && k != nil && k.N != nil
	case *ecdsa.PublicKey:
		return a.family == familyECDSA && k != nil && k.Curve != nil && k.Curve.Params().Name == a.curve
	case ed25519.PublicKey:
		return a.family == familyEd25519 && len(k) == ed25519.PublicKeySize
	}
	return false
}

// knownAlgorithms returns the names of all accepted algorithms, for error
// messages.
func knownAlgorithms() []string { return slices.Clone(algorithmOrder) }
