package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	scopes := p.Scopes
	if p.Type == "oauth2" {
		return p, nil, &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: redirect, Scopes: scopes,
			Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL}}, nil
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
	p, op, conf, err := s.oauthConfig(ctx, collection, provider, redirect)
	if err != nil {
		return nil, err
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.o.Logger.InfoContext(ctx, "security: oauth code exchange failed", "provider", provider, "err", err)
		return nil, errOAuth
	}
	var id identity
	if p.Type == "oauth2" {
		id, err = userAPI(ctx, conf.Client(ctx, tok), p)
	} else {
		id, err = idToken(ctx, op, conf.ClientID, s.o.Now, tok, st.Nonce)
	}
	if err != nil {
		s.o.Logger.WarnContext(ctx, "security: provider identity refused", "provider", provider, "err", err)
		return nil, errOAuth
	}
	if id.email == "" || !id.verified {
		return nil, apperr.New(apperr.Forbidden, "the provider did not vouch for an email address; sign in another way")
	}
	c, err := s.authCollection(ctx, collection)
	if err != nil {
		return nil, err
	}
	rec, err := store.FindRecordBy(ctx, s.o.DB.Reader(), s.o.DB.Dialect(), c, schema.FieldEmail, id.email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if c.Rules.Create == nil {
			return nil, apperr.New(apperr.Forbidden, "no account has %s, and registration in %s is closed", id.email, collection)
		}
		email, _ := json.Marshal(id.email)
		created, err := s.o.Records.Create(records.WithCaller(ctx, records.System), collection,
			map[string]json.RawMessage{schema.FieldEmail: email}, records.WriteOptions{Set: schema.Values{schema.FieldVerified: true}})
		if err != nil {
			return nil, fmt.Errorf("create the account of %s: %w", id.email, err)
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
		Detail: map[string]string{"provider": provider, "subject": id.subject}}); err != nil {
		return nil, err
	}
	return s.openSession(ctx, rec, collection, cl)
}

// identity is who a provider says signed in.
type identity struct {
	subject, email string
	verified       bool
}

// idToken checks an OpenID Connect ID token: signature, issuer, audience,
// times and nonce.
func idToken(ctx context.Context, op *oidc.Provider, clientID string, now func() time.Time, tok *oauth2.Token, nonce string) (identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.VerifierContext(ctx, &oidc.Config{ClientID: clientID, Now: now}).Verify(ctx, raw)
	if err != nil {
		return identity{}, err
	}
	if idt.Nonce != nonce {
		return identity{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims struct {
		Email    string          `json:"email"`
		Verified json.RawMessage `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return identity{}, err
	}
	// Some providers send email_verified as a string.
	return identity{subject: idt.Subject, email: claims.Email, verified: strings.Trim(string(claims.Verified), `"`) == "true"}, nil
}

// userAPI asks a plain OAuth2 provider's user API who signed in.
func userAPI(ctx context.Context, client *http.Client, p *schema.OAuth2Provider) (identity, error) {
	var user struct {
		ID       json.RawMessage `json:"id"`
		Email    string          `json:"email"`
		Verified bool            `json:"email_verified"`
	}
	if err := getJSON(ctx, client, p.UserInfoURL, &user); err != nil {
		return identity{}, err
	}
	id := identity{subject: strings.Trim(string(user.ID), `"`), email: user.Email, verified: user.Verified}
	if p.EmailsURL != "" {
		var emails []struct {
			Email    string `json:"email"`
			Verified bool   `json:"verified"`
			Primary  bool   `json:"primary"`
		}
		if err := getJSON(ctx, client, p.EmailsURL, &emails); err != nil {
			return identity{}, err
		}
		id.email, id.verified = "", false
		for _, e := range emails {
			if e.Primary && e.Verified {
				id.email, id.verified = e.Email, true
			}
		}
	}
	return id, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
