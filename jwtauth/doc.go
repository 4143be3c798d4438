// Package jwtauth verifies the JWTs that clients present when they open a
// real-time connection to the gateway.
//
// A [Verifier] is built from a [Config] naming one or more key sources: HMAC
// secrets, PEM files holding RSA, ECDSA or Ed25519 public keys, and a JWKS
// endpoint. [Verifier.Verify] checks a compact JWS token's signature and its
// registered claims (exp, nbf and iat with a configurable leeway, and iss and
// aud when configured) and returns its claims. Every refusal wraps
// [ErrInvalidToken]; [Reason] turns a refusal into a short label for logs and
// metrics. Error texts never include the token.
//
// Parsing and claim validation are done by github.com/golang-jwt/jwt/v5, and
// JWKS fetching by github.com/MicahParks/keyfunc/v3 with
// github.com/MicahParks/jwkset. Both are widely used and maintained; jwt/v5
// enforces an algorithm allow-list (jwt.WithValidMethods) before any key is
// looked up, and jwkset caches the key set, refreshes it in the background
// and refreshes it at once when a token names an unknown kid.
//
// This package adds the policy on top: which keys an algorithm may be
// checked against (an HMAC token only ever against the secrets, an RSA,
// ECDSA or Ed25519 token only against public keys of that family and
// curve), at most one unknown-kid refresh per Config.JWKSUnknownKIDRate (a
// token over that budget is refused at once rather than kept waiting), a
// size cap on tokens, and refusal reasons.
//
// The package has no Caddy imports; it satisfies the gateway's
// TokenVerifier interface.
package jwtauth
