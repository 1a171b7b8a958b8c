package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Sign-in with an OpenID Connect provider: the authorization code flow with
// PKCE (S256), a state that works once, and a nonce checked in the ID
// token. Accounts are matched by the email the provider has verified.

const oauthTTL = 10 * time.Minute

// providers caches discovery documents by issuer.
var providers sync.Map // issuer -> *oidc.Provider

func (s *Service) oauthConfig(ctx context.Context, collection, name, redirect string) (*schema.OAuth2Provider, *oidc.Provider, *oauth2.Config, error) {
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, nil, nil, err
	}
	p := c.Provider(name)
	if p == nil {
		return nil, nil, nil, apperr.New(apperr.NotFound, "%s has no sign-in provider %q", collection, name)
	}
	var op *oidc.Provider
	if v, ok := providers.Load(p.Issuer); ok {
		op = v.(*oidc.Provider)
	} else {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if op, err = oidc.NewProvider(dctx, p.Issuer); err != nil {
			return nil, nil, nil, apperr.Wrap(apperr.Unavailable, err, "the sign-in provider "+name+" does not answer")
		}
		providers.Store(p.Issuer, op)
	}
	scopes := p.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return p, op, &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: scopes}, nil
}

// OAuthStart begins a sign-in with a provider and returns the URL to send
// the browser to; the provider sends it back to redirect.
func (s *Service) OAuthStart(ctx context.Context, collection, provider, redirect string) (string, error) {
	_, _, conf, err := s.oauthConfig(ctx, collection, provider, redirect)
	if err != nil {
		return "", err
	}
	st := &store.OAuthState{State: newToken(), Collection: collection, Provider: provider,
		Verifier: oauth2.GenerateVerifier(), Nonce: newToken(), Expires: s.o.Now().UTC().Add(oauthTTL)}
	if err := s.o.DB.Write(ctx, func(tx *store.Tx) error { return store.InsertOAuthState(ctx, tx, st) }); err != nil {
		return "", err
	}
	return conf.AuthCodeURL(st.State, oauth2.S256ChallengeOption(st.Verifier), oidc.Nonce(st.Nonce)), nil
}

var errOAuth = apperr.New(apperr.Unauthorized, "the sign-in with the provider failed or expired; start again")

// OAuthCallback finishes a sign-in: it trades the code for the provider's
// tokens, checks the ID token, finds the account by verified email (or
// creates one when the collection lets anyone register) and opens a
// session.
func (s *Service) OAuthCallback(ctx context.Context, collection, provider, redirect, state, code string, cl auth.Client) (*Tokens, error) {
	var st *store.OAuthState
	err := s.o.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		st, err = store.TakeOAuthState(ctx, tx, state, s.o.Now().UTC())
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && (st.Collection != collection || st.Provider != provider)) {
		return nil, errOAuth
	}
	if err != nil {
		return nil, err
	}
	_, op, conf, err := s.oauthConfig(ctx, collection, provider, redirect)
	if err != nil {
		return nil, err
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.o.Logger.InfoContext(ctx, "security: oauth code exchange failed", "provider", provider, "err", err)
		return nil, errOAuth
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.VerifierContext(ctx, &oidc.Config{ClientID: conf.ClientID, Now: s.o.Now}).Verify(ctx, raw)
	if err != nil || idt.Nonce != st.Nonce {
		s.o.Logger.WarnContext(ctx, "security: bad ID token", "provider", provider, "err", err)
		return nil, errOAuth
	}
	var claims struct {
		Email    string          `json:"email"`
		Verified json.RawMessage `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, errOAuth
	}
	// Some providers send email_verified as a string.
	verified := strings.Trim(string(claims.Verified), `"`) == "true"
	if claims.Email == "" || !verified {
		return nil, apperr.New(apperr.Forbidden, "the provider did not vouch for an email address; sign in another way")
	}
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	rec, err := store.FindRecordBy(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, schema.FieldEmail, claims.Email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.Rules.Create == nil {
			return nil, apperr.New(apperr.Forbidden, "no account has %s, and registration in %s is closed", claims.Email, collection)
		}
		email, _ := json.Marshal(claims.Email)
		created, err := s.o.Records.Create(records.WithCaller(ctx, records.System), collection,
			map[string]json.RawMessage{schema.FieldEmail: email}, records.WriteOptions{Set: schema.Values{schema.FieldVerified: true}})
		if err != nil {
			return nil, fmt.Errorf("create the account of %s: %w", claims.Email, err)
		}
		rec = created.Record
	case err != nil:
		return nil, err
	default:
		if v, _ := rec.Values[schema.FieldVerified].(bool); !v {
			err := s.o.DB.Write(ctx, func(tx *store.Tx) error { return store.SetField(ctx, tx, c, rec.ID, schema.FieldVerified, true) })
			if err != nil {
				return nil, err
			}
			rec.Values[schema.FieldVerified] = true
		}
	}
	if err := s.checkAuthRule(ctx, c, rec); err != nil {
		return nil, err
	}
	if err := audit.Log(ctx, s.o.DB, audit.Event{Event: "oauth2.login", Actor: rec.ID, ActorCollection: collection, Target: rec.ID,
		Detail: map[string]string{"provider": provider, "subject": idt.Subject}}); err != nil {
		return nil, err
	}
	return s.openSession(ctx, rec, collection, cl)
}
