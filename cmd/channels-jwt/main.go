// Command channels-jwt makes the keys and tokens that `auth jwt` and
// `join jwt` verify, for development, tests and benchmarks: an app in
// production signs its tokens with its own JWT library.
//
//	channels-jwt keygen -alg ES256 -out app          # app.pem (private) and app.pub.pem (for public_key)
//	channels-jwt sign -secret "$SECRET" -sub alice -ttl 10m
//	channels-jwt sign -alg ES256 -key app.pem -sub alice -claims '{"rooms":["1","2"]}'
//	channels-jwt sign -secret "$SECRET" -sub alice -channel private:42   # a join token
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "channels-jwt:", err)
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a command: keygen or sign")
	}
	switch args[0] {
	case "keygen":
		return keygen(args[1:], out)
	case "sign":
		return sign(args[1:], out)
	}
	return fmt.Errorf("unknown command %q (want keygen or sign)", args[0])
}

// keygen writes a private key (<out>.pem, PKCS#8) and its public key
// (<out>.pub.pem, PKIX) for alg.
func keygen(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	alg := fs.String("alg", "ES256", "RS256, ES256, ES384 or EdDSA")
	prefix := fs.String("out", "channels-jwt", "file name prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var priv crypto.Signer
	var err error
	switch *alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return fmt.Errorf("keygen: unknown -alg %q", *alg)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(*prefix+".pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(*prefix+".pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(out, "%s.pem (private, keep it with the app)\n%s.pub.pem (public_key in the Caddyfile)\n", *prefix, *prefix)
	return nil
}

// sign prints a token.
func sign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	alg := fs.String("alg", "HS256", "HS256, HS384, HS512, RS256, PS256, ES256, ES384 or EdDSA")
	secret := fs.String("secret", "", "HMAC secret (HS*)")
	keyFile := fs.String("key", "", "PEM private key (RS*, PS*, ES*, EdDSA), as keygen writes")
	sub := fs.String("sub", "", "sub claim")
	channel := fs.String("channel", "", "channel claim: the topic of a join token")
	iss := fs.String("iss", "", "iss claim")
	aud := fs.String("aud", "", "aud claim")
	kid := fs.String("kid", "", "kid header")
	ttl := fs.Duration("ttl", time.Hour, "lifetime: exp = now + ttl (0: no exp)")
	extra := fs.String("claims", "", "more claims as a JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	claims := jwt.MapClaims{}
	if *extra != "" {
		if err := json.Unmarshal([]byte(*extra), &claims); err != nil {
			return fmt.Errorf("sign: -claims: %w", err)
		}
	}
	now := time.Now()
	claims["iat"] = now.Unix()
	if *ttl > 0 {
		claims["exp"] = now.Add(*ttl).Unix()
	}
	for name, v := range map[string]string{"sub": *sub, "channel": *channel, "iss": *iss, "aud": *aud} {
		if v != "" {
			claims[name] = v
		}
	}
	method := jwt.GetSigningMethod(*alg)
	if method == nil || *alg == "none" {
		return fmt.Errorf("sign: unknown -alg %q", *alg)
	}
	var key any
	if _, hmac := method.(*jwt.SigningMethodHMAC); hmac {
		if *secret == "" {
			return errors.New("sign: -alg " + *alg + " needs -secret")
		}
		key = []byte(*secret)
	} else {
		if *keyFile == "" {
			return errors.New("sign: -alg " + *alg + " needs -key")
		}
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return fmt.Errorf("sign: %s holds no PEM block", *keyFile)
		}
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			return fmt.Errorf("sign: %s: %w", *keyFile, err)
		}
	}
	tok := jwt.NewWithClaims(method, claims)
	if *kid != "" {
		tok.Header["kid"] = *kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	fmt.Fprintln(out, s)
	return nil
}
