// Package auth holds identity: password hashing, signed access tokens and
// the principal a request acts as.
package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters, after OWASP's recommendation (19 MiB, 2 passes, one
// lane). They are written into every hash, so changing them later still
// verifies old hashes and NeedsRehash reports them.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// HashPassword returns a PHC-format argon2id hash of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches hash. needsRehash is set
// when the hash was made with other parameters than the current ones.
func CheckPassword(hash, password string) (ok, needsRehash bool, err error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, false, errors.New("not an argon2id hash")
	}
	var version int
	var mem, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, false, fmt.Errorf("bad argon2id version: %w", err)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads); err != nil {
		return false, false, fmt.Errorf("bad argon2id parameters: %w", err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, false, fmt.Errorf("bad argon2id salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, false, errors.New("bad argon2id key")
	}
	got := argon2.IDKey([]byte(password), salt, passes, mem, threads, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	needsRehash = version != argon2.Version || mem != argonMemory || passes != argonTime || threads != argonThreads || len(want) != argonKeyLen
	return ok, needsRehash, nil
}

// Signer issues and verifies EdDSA-signed access tokens.
type Signer struct {
	key ed25519.PrivateKey
	kid string
}

// LoadSigner reads the signing key from dir, creating it on first use.
func LoadSigner(dir string) (*Signer, error) {
	path := filepath.Join(dir, "signing_key.pem")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("auth: create %s: %w", dir, err)
		}
		// O_EXCL: two processes starting together keep one key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = f.Write(data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if errors.Is(err, os.ErrExist) {
			return LoadSigner(dir)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: write signing key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("auth: %s is not a PEM file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: parse %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: %s holds a %T, want an Ed25519 key", path, k)
	}
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:8])}, nil
}

// Secret derives a secret for another purpose (such as cursor MACs) from
// the signing key.
func (s *Signer) Secret(purpose string) []byte {
	sum := sha256.Sum256(append([]byte(purpose+"\x00"), s.key.Seed()...))
	return sum[:]
}

// Role is what a principal may do.
type Role string

const (
	RoleSuperuser Role = "superuser"
	// RoleUser is a record of an auth collection.
	RoleUser Role = "user"
)

// Claims are the claims of a Strata access token.
type Claims struct {
	Role Role `json:"role"`
	// Collection is the auth collection of a user.
	Collection string `json:"col,omitempty"`
	// SessionID names the session a user's token belongs to; the token
	// stops working when the session is revoked.
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

const issuer = "strata"

// Issue signs an access token for p, valid for ttl.
func (s *Signer) Issue(p Principal, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{Role: p.Role, Collection: p.Collection, SessionID: p.SessionID, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   p.ID,
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// Verify checks a token's signature and its times against now and returns
// its claims.
func (s *Signer) Verify(token string, now time.Time) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return s.key.Public(), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Principal is who a request acts as.
type Principal struct {
	ID         string
	Role       Role
	Collection string // the auth collection of a user
	SessionID  string
}

// IsSuperuser reports whether p is a superuser.
func (p *Principal) IsSuperuser() bool { return p != nil && p.Role == RoleSuperuser }

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// PrincipalFrom returns the principal of ctx, or nil for anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// JWK is a public key in JSON Web Key form (RFC 8037 for Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the public keys that verify Strata's tokens.
func (s *Signer) JWKS() map[string][]JWK {
	pub := s.key.Public().(ed25519.PublicKey)
	return map[string][]JWK{"keys": {{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: s.kid, Alg: "EdDSA", Use: "sig"}}}
}
