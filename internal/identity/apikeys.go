package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// API keys look like sk_<id>_<secret>: the id (the "sk_<id>" prefix
// recognises a key in logs and lists) finds the stored hash, the secret is
// checked against it.
const keyPrefix = "sk_"

var operations = []string{"list", "view", "create", "update", "delete", "*"}

// Scope lets a key run operations on the records of a collection ("*" for
// every collection).
type Scope struct {
	Collection string   `json:"collection"`
	Operations []string `json:"operations"`
}

// KeyInfo describes a key; Key is set only in the answer that creates it.
type KeyInfo struct {
	ID     string  `json:"id"`
	Prefix string  `json:"prefix"`
	Key    string  `json:"key,omitempty"`
	Name   string  `json:"name"`
	Owner  string  `json:"owner"`
	Scopes []Scope `json:"scopes"`
	// RateLimit is the key's own request limit; "" means the default.
	RateLimit string     `json:"rate_limit"`
	Created   time.Time  `json:"created"`
	Expires   *time.Time `json:"expires"`
	LastUsed  *time.Time `json:"last_used"`
	Revoked   *time.Time `json:"revoked"`
}

func ownerOf(p *auth.Principal) (string, error) {
	switch {
	case p == nil:
		return "", apperr.New(apperr.Unauthorized, "sign in to manage API keys")
	case p.KeyID != "":
		return "", apperr.New(apperr.Forbidden, "an API key cannot manage API keys")
	case p.IsSuperuser():
		return "_superusers", nil
	}
	return p.Collection, nil
}

// CreateKey makes an API key for the caller, which acts as the caller
// within scopes (nil: everything the caller may do).
func (s *Service) CreateKey(ctx context.Context, p *auth.Principal, name string, scopes []Scope, expires *time.Time, rateLimit string) (*KeyInfo, error) {
	owner, err := ownerOf(p)
	if err != nil {
		return nil, err
	}
	var ve schema.ValidationError
	if name = strings.TrimSpace(name); name == "" || len(name) > 100 {
		ve.Errors = append(ve.Errors, schema.FieldError{Field: "name", Code: "required", Message: "name is required, at most 100 characters"})
	}
	for i, sc := range scopes {
		if sc.Collection != "*" {
			if _, err := s.o.Records.Collection(ctx, sc.Collection); err != nil {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("scopes[%d].collection", i), Code: "unknown_collection", Message: fmt.Sprintf("%q is not a collection", sc.Collection)})
			}
		}
		if len(sc.Operations) == 0 {
			ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("scopes[%d].operations", i), Code: "required", Message: "operations are required"})
		}
		for _, op := range sc.Operations {
			if !slices.Contains(operations, op) {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("scopes[%d].operations", i), Code: "invalid_value", Message: fmt.Sprintf("%q is not one of %v", op, operations)})
			}
		}
	}
	if rateLimit = strings.TrimSpace(rateLimit); rateLimit != "" {
		if _, err := ratelimit.ParseLimit(rateLimit); err != nil {
			ve.Errors = append(ve.Errors, schema.FieldError{Field: "rate_limit", Code: "invalid_value", Message: err.Error()})
		}
	}
	now := s.o.Now().UTC()
	if expires != nil && !expires.After(now) {
		ve.Errors = append(ve.Errors, schema.FieldError{Field: "expires", Code: "invalid_value", Message: "expires must be in the future"})
	}
	if len(ve.Errors) > 0 {
		return nil, apperr.FromValidation(&ve, "the API key request is invalid")
	}
	if scopes == nil {
		scopes = []Scope{{Collection: "*", Operations: []string{"*"}}}
	}
	scopeJSON, _ := json.Marshal(scopes)
	id := randomID()
	key := keyPrefix + id + "_" + newToken()
	k := &store.APIKey{ID: id, Hash: hashToken(key), OwnerCollection: owner, OwnerID: p.ID, Name: name,
		Scopes: string(scopeJSON), RateLimit: rateLimit, Created: now, Expires: expires}
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		if err := store.InsertAPIKey(ctx, tx, k); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "apikey.created", Target: keyPrefix + id, Detail: map[string]any{"name": name, "scopes": scopes}})
	})
	if err != nil {
		return nil, err
	}
	info := keyInfo(k)
	info.Key = key
	return info, nil
}

func keyInfo(k *store.APIKey) *KeyInfo {
	var scopes []Scope
	json.Unmarshal([]byte(k.Scopes), &scopes)
	return &KeyInfo{ID: k.ID, Prefix: keyPrefix + k.ID, Name: k.Name, Owner: k.OwnerCollection + "/" + k.OwnerID, Scopes: scopes, RateLimit: k.RateLimit,
		Created: k.Created, Expires: k.Expires, LastUsed: k.LastUsed, Revoked: k.Revoked}
}

// Keys lists the caller's keys; a superuser sees every key.
func (s *Service) Keys(ctx context.Context, p *auth.Principal) ([]*KeyInfo, error) {
	owner, err := ownerOf(p)
	if err != nil {
		return nil, err
	}
	id := p.ID
	if p.IsSuperuser() {
		owner, id = "", ""
	}
	list, err := store.ListAPIKeys(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), owner, id)
	if err != nil {
		return nil, err
	}
	out := make([]*KeyInfo, len(list))
	for i, k := range list {
		out[i] = keyInfo(k)
	}
	return out, nil
}

// RevokeKey revokes one of the caller's keys (any key, for a superuser).
func (s *Service) RevokeKey(ctx context.Context, p *auth.Principal, id string) error {
	owner, err := ownerOf(p)
	if err != nil {
		return err
	}
	err = s.o.DB.Write(ctx, func(tx *store.Tx) error {
		k, err := store.FindAPIKey(ctx, tx, tx.Dialect, id)
		if err != nil {
			return err
		}
		if !p.IsSuperuser() && (k.OwnerCollection != owner || k.OwnerID != p.ID) {
			return store.ErrNotFound
		}
		if err := store.RevokeAPIKey(ctx, tx, id, s.o.Now().UTC()); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "apikey.revoked", Target: keyPrefix + id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return apperr.New(apperr.NotFound, "no active API key %q", id)
	}
	return err
}

var errBadKey = apperr.New(apperr.Unauthorized, "the API key is invalid, expired or revoked")

// AuthenticateKey returns the principal an API key acts as.
func (s *Service) AuthenticateKey(ctx context.Context, key string) (*auth.Principal, error) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	id, _, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || id == "" {
		return nil, errBadKey
	}
	k, err := store.FindAPIKey(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadKey
	}
	if err != nil {
		return nil, err
	}
	now := s.o.Now().UTC()
	if subtle.ConstantTimeCompare([]byte(hashToken(key)), []byte(k.Hash)) != 1 || k.Revoked != nil || (k.Expires != nil && !now.Before(*k.Expires)) {
		return nil, errBadKey
	}
	// Last use is kept to the minute: no write on every request.
	if k.LastUsed == nil || now.Sub(*k.LastUsed) > time.Minute {
		if err := s.o.DB.Write(ctx, func(tx *store.Tx) error { return store.TouchAPIKey(ctx, tx, id, now) }); err != nil {
			return nil, err
		}
	}
	p := &auth.Principal{ID: k.OwnerID, Role: auth.RoleUser, Collection: k.OwnerCollection, KeyID: id, Scopes: map[string][]string{},
		RateLimit: k.RateLimit}
	if k.OwnerCollection == "_superusers" {
		p.Role, p.Collection = auth.RoleSuperuser, ""
	}
	var scopes []Scope
	if err := json.Unmarshal([]byte(k.Scopes), &scopes); err != nil {
		return nil, fmt.Errorf("api key %s: corrupt scopes: %w", id, err)
	}
	for _, sc := range scopes {
		p.Scopes[sc.Collection] = append(p.Scopes[sc.Collection], sc.Operations...)
	}
	return p, nil
}

func randomID() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
