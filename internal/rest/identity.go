package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/httpx"
	"github.com/strata-dev/strata/internal/identity"
)

// checkSession refuses a user token whose session has ended or whose
// account is gone, and gives p its account's record.
func (a *API) checkSession(ctx context.Context, p *auth.Principal) error {
	if a.ident == nil {
		return apperr.New(apperr.Unauthorized, "user sessions are not served here")
	}
	rec, err := a.ident.CheckSession(ctx, p)
	p.Account = rec
	return err
}

func client(r *http.Request) auth.Client { return auth.ClientFrom(r.Context()) }

type userTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Record       any    `json:"record"`
}

func writeTokens(w http.ResponseWriter, t *identity.Tokens) {
	w.Header().Set("Cache-Control", "no-store")
	if t.MFAToken != "" {
		httpx.JSON(w, http.StatusOK, map[string]any{"mfa_required": true, "mfa_token": t.MFAToken, "expires_in": t.ExpiresIn})
		return
	}
	httpx.JSON(w, http.StatusOK, userTokens{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken,
		TokenType: "Bearer", ExpiresIn: t.ExpiresIn, Record: t.Record})
}

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	_, obj, err := a.readObject(w, r)
	if err != nil {
		return err
	}
	rec, err := a.ident.Register(r.Context(), r.PathValue("collection"), obj)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusCreated, rec)
	return nil
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readLogin(w, r)
	if err != nil {
		return err
	}
	t, err := a.ident.Login(r.Context(), r.PathValue("collection"), req.Email, req.Password, client(r))
	if err != nil {
		return err
	}
	writeTokens(w, t)
	return nil
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return err
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return apperr.New(apperr.Invalid, "refresh_token is required")
	}
	t, err := a.ident.Refresh(r.Context(), r.PathValue("collection"), req.RefreshToken, client(r))
	if err != nil {
		return err
	}
	writeTokens(w, t)
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	p := auth.PrincipalFrom(r.Context())
	if p == nil || p.Collection != r.PathValue("collection") {
		return apperr.New(apperr.Unauthorized, "sign in to %s first", r.PathValue("collection"))
	}
	if err := a.ident.Logout(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request) error {
	rec, err := a.ident.Me(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, rec)
	return nil
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=300")
	httpx.JSON(w, http.StatusOK, a.signer.JWKS())
	return nil
}

func (a *API) sessions(w http.ResponseWriter, r *http.Request) error {
	list, err := a.ident.Sessions(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	if list == nil {
		list = []identity.SessionInfo{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"items": list})
	return nil
}

func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) error {
	if err := a.ident.RevokeSession(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) revokeAllSessions(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.ident.RevokeAll(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context())); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type keyRequest struct {
	Name      string           `json:"name"`
	Scopes    []identity.Scope `json:"scopes"`
	Expires   *time.Time       `json:"expires"`
	RateLimit string           `json:"rate_limit"`
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return err
	}
	var req keyRequest
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return err
	}
	k, err := a.ident.CreateKey(r.Context(), auth.PrincipalFrom(r.Context()), req.Name, req.Scopes, req.Expires, req.RateLimit)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusCreated, k)
	return nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	list, err := a.ident.Keys(r.Context(), auth.PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	if list == nil {
		list = []*identity.KeyInfo{}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"items": list})
	return nil
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) error {
	if err := a.ident.RevokeKey(r.Context(), auth.PrincipalFrom(r.Context()), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type mfaRequest struct {
	Code         string `json:"code"`
	MFAToken     string `json:"mfa_token"`
	RecoveryCode string `json:"recovery_code"`
}

func (a *API) readMFA(w http.ResponseWriter, r *http.Request) (mfaRequest, error) {
	var req mfaRequest
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return req, err
	}
	return req, httpx.DecodeStrict(body, &req)
}

func (a *API) mfaEnroll(w http.ResponseWriter, r *http.Request) error {
	en, err := a.ident.EnrollMFA(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, en)
	return nil
}

func (a *API) mfaConfirm(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readMFA(w, r)
	if err != nil {
		return err
	}
	codes, err := a.ident.ConfirmMFA(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()), req.Code)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	return nil
}

func (a *API) mfaDisable(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readMFA(w, r)
	if err != nil {
		return err
	}
	if err := a.ident.DisableMFA(r.Context(), r.PathValue("collection"), auth.PrincipalFrom(r.Context()), req.Code); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) mfaVerify(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readMFA(w, r)
	if err != nil {
		return err
	}
	if req.MFAToken == "" || (req.Code == "") == (req.RecoveryCode == "") {
		return apperr.New(apperr.Invalid, "send mfa_token and one of code or recovery_code")
	}
	t, err := a.ident.VerifyMFA(r.Context(), r.PathValue("collection"), req.MFAToken, req.Code, req.RecoveryCode, client(r))
	if err != nil {
		return err
	}
	writeTokens(w, t)
	return nil
}

type emailRequest struct {
	Email string `json:"email"`
}

type confirmRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (a *API) readEmail(w http.ResponseWriter, r *http.Request) (string, error) {
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return "", err
	}
	var req emailRequest
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return "", err
	}
	if req.Email == "" {
		return "", apperr.New(apperr.Invalid, "email is required")
	}
	return req.Email, nil
}

func (a *API) readConfirm(w http.ResponseWriter, r *http.Request) (confirmRequest, error) {
	var req confirmRequest
	body, err := httpx.ReadJSON(w, r, a.maxBody)
	if err != nil {
		return req, err
	}
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return req, err
	}
	if req.Token == "" {
		return req, apperr.New(apperr.Invalid, "token is required")
	}
	return req, nil
}

// accepted answers a request whose outcome must not say whether the
// address exists.
func accepted(w http.ResponseWriter) {
	httpx.JSON(w, http.StatusAccepted, map[string]string{"status": "if the address belongs to an account, an email is on its way"})
}

func (a *API) resetRequest(w http.ResponseWriter, r *http.Request) error {
	email, err := a.readEmail(w, r)
	if err != nil {
		return err
	}
	if err := a.ident.RequestReset(r.Context(), r.PathValue("collection"), email); err != nil {
		return err
	}
	accepted(w)
	return nil
}

func (a *API) resetConfirm(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readConfirm(w, r)
	if err != nil {
		return err
	}
	if err := a.ident.ConfirmReset(r.Context(), r.PathValue("collection"), req.Token, req.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) verifyRequest(w http.ResponseWriter, r *http.Request) error {
	email, err := a.readEmail(w, r)
	if err != nil {
		return err
	}
	if err := a.ident.RequestVerify(r.Context(), r.PathValue("collection"), email); err != nil {
		return err
	}
	accepted(w)
	return nil
}

func (a *API) verifyConfirm(w http.ResponseWriter, r *http.Request) error {
	req, err := a.readConfirm(w, r)
	if err != nil {
		return err
	}
	if err := a.ident.ConfirmVerify(r.Context(), r.PathValue("collection"), req.Token); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// callbackURL is where a provider sends the browser back: this server, as
// the request reached it.
func callbackURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/api/v1/auth/" + r.PathValue("collection") + "/oauth2/" + r.PathValue("provider") + "/callback"
}

func (a *API) oauthStart(w http.ResponseWriter, r *http.Request) error {
	u, err := a.ident.OAuthStart(r.Context(), r.PathValue("collection"), r.PathValue("provider"), callbackURL(r))
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

func (a *API) oauthCallback(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return apperr.New(apperr.Unauthorized, "the provider refused the sign-in: %s", e)
	}
	if q.Get("state") == "" || q.Get("code") == "" {
		return apperr.New(apperr.Invalid, "the callback needs state and code")
	}
	t, err := a.ident.OAuthCallback(r.Context(), r.PathValue("collection"), r.PathValue("provider"), callbackURL(r), q.Get("state"), q.Get("code"), client(r))
	if err != nil {
		return err
	}
	writeTokens(w, t)
	return nil
}
