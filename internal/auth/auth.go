// Package auth holds identity: password hashing, signed access tokens and
// the principal a request acts as.
package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"

	"github.com/strata-dev/strata/internal/schema"
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

// Signer issues and verifies EdDSA-signed access tokens. Its keys live in
// <dir>/keys, one PEM file each, named by creation time: the newest signs,
// every one verifies, and a token names its key by kid. Rotation adds a
// key; other processes on the same directory sign with it from their next
// token, and stop accepting the tokens of a key rotation removed within a
// second.
type Signer struct {
	dir    string
	secret []byte

	mu      sync.Mutex
	keys    []signingKey // oldest first
	modTime time.Time    // of the keys directory when read
	// statted is when the keys directory was last looked at; the tokens
	// of recently verified signatures look again only after recheck, so
	// that a request does not cost a stat.
	statted time.Time
	recheck time.Duration

	verified tokenCache
}

// tokenCache holds the claims of tokens whose signature was checked. It is
// bounded: when full, it starts again empty (tokens are short-lived, and a
// miss costs one signature check).
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	claims *Claims
	kid    string
}

const tokenCacheSize = 10000

func (t *tokenCache) get(tok string) (verifiedToken, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c, ok := t.m[tok]
	return c, ok
}

func (t *tokenCache) put(tok string, v verifiedToken) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= tokenCacheSize {
		t.m = make(map[string]verifiedToken, 256)
	}
	t.m[tok] = v
}

type signingKey struct {
	created time.Time
	priv    ed25519.PrivateKey
	kid     string
}

// LoadSigner reads the keys and the secret from dir, creating them on
// first use.
func LoadSigner(dir string) (*Signer, error) {
	secret, err := loadSecret(dir)
	if err != nil {
		return nil, err
	}
	s := &Signer{dir: dir, secret: secret, recheck: time.Second}
	if err := s.reload(); err != nil {
		return nil, err
	}
	if len(s.keys) == 0 {
		if _, err := AddKey(dir, time.Now()); err != nil {
			return nil, err
		}
		if err := s.reload(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func keysDir(dir string) string { return filepath.Join(dir, "keys") }

// loadSecret reads <dir>/secret, 32 random bytes made on first use.
func loadSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, "secret")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b := make([]byte, 32)
		rand.Read(b)
		if err := writeExclusive(path, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n")); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("auth: write secret: %w", err)
		}
		return loadSecret(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read secret: %w", err)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(b) < 32 {
		return nil, fmt.Errorf("auth: %s does not hold a secret of 32 bytes", path)
	}
	return b, nil
}

// writeExclusive creates path with data, failing with os.ErrExist when it
// is there: of two processes starting together, one writes.
func writeExclusive(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// AddKey makes a new signing key in dir, which signs from then on, and
// returns its kid.
func AddKey(dir string, now time.Time) (string, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("%020d.pem", now.UnixNano())
	if err := writeExclusive(filepath.Join(keysDir(dir), name), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", fmt.Errorf("auth: write signing key: %w", err)
	}
	return kidOf(key), nil
}

// Rotate adds a signing key and deletes the keys that no token can need
// any more: those replaced more than retain ago (retain must exceed the
// longest token lifetime). It returns the new kid and the deleted ones.
func Rotate(dir string, now time.Time, retain time.Duration) (string, []string, error) {
	kid, err := AddKey(dir, now)
	if err != nil {
		return "", nil, err
	}
	keys, err := readKeys(dir)
	if err != nil {
		return "", nil, err
	}
	var removed []string
	for i := 0; i+1 < len(keys); i++ {
		if now.Sub(keys[i+1].created) > retain {
			path := filepath.Join(keysDir(dir), fmt.Sprintf("%020d.pem", keys[i].created.UnixNano()))
			if err := os.Remove(path); err != nil {
				return kid, removed, fmt.Errorf("auth: remove old key: %w", err)
			}
			removed = append(removed, keys[i].kid)
		}
	}
	return kid, removed, nil
}

func kidOf(key ed25519.PrivateKey) string {
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

func readKeys(dir string) ([]signingKey, error) {
	entries, err := os.ReadDir(keysDir(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read keys: %w", err)
	}
	var keys []signingKey
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".pem") {
			continue
		}
		nanos, err := strconv.ParseInt(strings.TrimSuffix(name, ".pem"), 10, 64)
		if err != nil {
			continue
		}
		path := filepath.Join(keysDir(dir), name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("auth: read %s: %w", path, err)
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
		keys = append(keys, signingKey{created: time.Unix(0, nanos), priv: key, kid: kidOf(key)})
	}
	slices.SortFunc(keys, func(a, b signingKey) int { return a.created.Compare(b.created) })
	return keys, nil
}

// reload reads the keys again when the directory changed.
func (s *Signer) reload() error { return s.reloadAfter(0) }

// reloadAfter is reload when the directory was last looked at over d ago.
func (s *Signer) reloadAfter(d time.Duration) error {
	now := time.Now()
	if d > 0 {
		s.mu.Lock()
		fresh := now.Sub(s.statted) < d
		s.mu.Unlock()
		if fresh {
			return nil
		}
	}
	fi, err := os.Stat(keysDir(s.dir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statted = now
	if fi != nil && fi.ModTime().Equal(s.modTime) && len(s.keys) > 0 {
		return nil
	}
	keys, err := readKeys(s.dir)
	if err != nil {
		return err
	}
	s.keys = keys
	if fi != nil {
		s.modTime = fi.ModTime()
	}
	return nil
}

func (s *Signer) current() signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *Signer) byKid(kid string) (ed25519.PublicKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return ed25519.PublicKey(k.priv[ed25519.SeedSize:]), true
		}
	}
	return nil, false
}

// Secret derives a secret for a purpose (such as cursor MACs) from the
// data directory's secret, which rotation leaves alone.
func (s *Signer) Secret(purpose string) []byte {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// Role is what a principal may do.
type Role string

const (
	RoleSuperuser Role = "superuser"
	// RoleUser is a record of an auth collection.
	RoleUser Role = "user"
	// RoleMFA marks the short-lived token of a login that still owes its
	// second factor; it opens nothing but the MFA check.
	RoleMFA Role = "mfa"
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
	if err := s.reload(); err != nil {
		return "", err
	}
	k := s.current()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.kid
	return t.SignedString(k.priv)
}

// Verify checks a token's signature and its times against now and returns
// its claims.
func (s *Signer) Verify(token string, now time.Time) (*Claims, error) {
	// A signature checked once need not be checked again: the cache keeps
	// the claims of recent tokens, and their times are still checked.
	if v, ok := s.verified.get(token); ok {
		// The key must still be there: deleting a key ends its tokens,
		// within recheck when another process deleted it.
		if err := s.reloadAfter(s.recheck); err != nil {
			return nil, err
		}
		if _, ok := s.byKid(v.kid); !ok {
			return nil, fmt.Errorf("unknown key id %q", v.kid)
		}
		if !v.claims.valid(now) {
			return nil, jwt.ErrTokenExpired
		}
		return v.claims, nil
	}
	c, kid, err := s.verify(token, now)
	if err != nil {
		return nil, err
	}
	s.verified.put(token, verifiedToken{claims: c, kid: kid})
	return c, nil
}

func (c *Claims) valid(now time.Time) bool {
	return c.ExpiresAt != nil && now.Before(c.ExpiresAt.Time) && (c.NotBefore == nil || !now.Before(c.NotBefore.Time))
}

func (s *Signer) verify(token string, now time.Time) (*Claims, string, error) {
	var c Claims
	var kid string
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		// Another process may have rotated the keys: a stat tells.
		if err := s.reload(); err != nil {
			return nil, err
		}
		if pub, ok := s.byKid(kid); ok {
			return pub, nil
		}
		return nil, fmt.Errorf("unknown key id %q", kid)
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(issuer), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, "", err
	}
	return &c, kid, nil
}

// Principal is who a request acts as.
type Principal struct {
	ID         string
	Role       Role
	Collection string // the auth collection of a user
	SessionID  string
	// KeyID is set when the principal signed in with an API key, whose
	// Scopes (collection to operations; "*" for every collection) then
	// bound what it may do. Nil Scopes: no bound beyond the role.
	KeyID  string
	Scopes map[string][]string
	// RateLimit is the API key's own request limit, such as
	// "100/min burst 20"; "" means the default for users.
	RateLimit string
	// Account is the user's record as read when the request's session
	// was checked, nil when it was not read.
	Account *schema.Record
}

// Allows reports whether p's scopes let it run op on the records of
// collection.
func (p *Principal) Allows(collection, op string) bool {
	if p == nil || p.Scopes == nil {
		return true
	}
	for _, c := range []string{collection, "*"} {
		for _, o := range p.Scopes[c] {
			if o == op || o == "*" {
				return true
			}
		}
	}
	return false
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
	_ = s.reload()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JWK, 0, len(s.keys))
	for i := len(s.keys) - 1; i >= 0; i-- { // the signing key first
		k := s.keys[i]
		pub := k.priv.Public().(ed25519.PublicKey)
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.kid, Alg: "EdDSA", Use: "sig"})
	}
	return map[string][]JWK{"keys": out}
}

// Client is where a request comes from.
type Client struct {
	IP        string
	UserAgent string
}

type clientKey struct{}

// WithClient returns ctx carrying c.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client of ctx; empty when unknown.
func ClientFrom(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
