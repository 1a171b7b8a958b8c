// Package rest serves the /api/v1 REST API over the records service.
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/httpx"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Options configures the API.
type Options struct {
	Records      *records.Service
	DB           *store.DB
	Signer       *auth.Signer
	Identity     *identity.Service
	Logger       *slog.Logger
	MaxBodyBytes int64
	TokenTTL     time.Duration
	// Health reports whether the node may take traffic (database reachable,
	// migrations applied, not draining); nil means always ready.
	Health *telemetry.Health
	// Metrics receives the HTTP metrics; nil exports none.
	Metrics prometheus.Registerer
	// MetricsHandler, when set, is served at GET /metrics.
	MetricsHandler http.Handler
	// Tracer, when set, traces every request.
	Tracer trace.Tracer
	// Realtime returns the node's realtime hub, or nil while it is not
	// running.
	Realtime func() Realtime
	// Jobs and Webhooks, when set, serve /api/v1/jobs and /api/v1/webhooks
	// (they check their callers themselves; see SuperusersOnly).
	Jobs     http.Handler
	Webhooks http.Handler
	// RateLimits limits how many requests each client may make; the zero
	// value limits nothing.
	RateLimits RateLimits
	// TrustedProxies are the peers whose Forwarded and X-Forwarded-For
	// headers name the client, for rate limits and the audit log.
	TrustedProxies []netip.Prefix
	Now            func() time.Time
}

// API is the REST API's handler.
type API struct {
	recs     *records.Service
	db       *store.DB
	signer   *auth.Signer
	ident    *identity.Service
	log      *slog.Logger
	maxBody  int64
	tokenTTL time.Duration
	health   *telemetry.Health
	limits   *limiter // nil: no rate limits
	realtime func() Realtime
	jobs     http.Handler
	webhooks http.Handler
	now      func() time.Time
	// dummyHash is checked against when an email is unknown, so that a
	// login takes as long whether or not the account exists. It is made on
	// first use: hashing costs time and memory a start need not pay.
	dummyHash func() string
}

// New returns the API handler with every route and middleware in place.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	dummy := sync.OnceValue(func() string {
		h, _ := auth.HashPassword("strata-dummy-password")
		return h
	})
	a := &API{recs: o.Records, db: o.DB, signer: o.Signer, ident: o.Identity, log: o.Logger, maxBody: o.MaxBodyBytes,
		tokenTTL: o.TokenTTL, health: o.Health, realtime: o.Realtime, jobs: o.Jobs, webhooks: o.Webhooks, now: o.Now, dummyHash: dummy,
		limits: newLimiter(o.RateLimits, o.TrustedProxies, o.Metrics, o.Logger, collectionLimit(o.Records))}
	if a.health == nil {
		a.health = telemetry.NewHealth(0)
	}
	mux := http.NewServeMux()
	a.routes(mux)
	if o.MetricsHandler != nil {
		mux.Handle("GET /metrics", o.MetricsHandler)
	}
	return httpx.Middleware(httpx.Observe{Log: o.Logger, Metrics: o.Metrics, Tracer: o.Tracer, TrustedProxies: o.TrustedProxies},
		Consistency(o.DB, a.authenticate(httpx.Problems(mux))))
}

// routes registers every route. Routes wrapped by credential form the
// "auth" rate-limit group; those wrapped by handle, superuser and
// recordAccess the "api" group; the others are never limited.
func (a *API) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("POST /api/v1/admin/login", a.credential(a.adminLogin))
	mux.Handle("GET /api/v1/openapi.json", a.handle(a.openAPI))
	mux.Handle("GET /.well-known/jwks.json", a.handle(a.jwks))

	mux.Handle("POST /api/v1/auth/{collection}/register", a.credential(a.register))
	mux.Handle("POST /api/v1/auth/{collection}/login", a.credential(a.login))
	mux.Handle("POST /api/v1/auth/{collection}/refresh", a.credential(a.refresh))
	mux.Handle("POST /api/v1/auth/{collection}/logout", a.handle(a.logout))
	mux.Handle("GET /api/v1/auth/{collection}/me", a.handle(a.me))
	mux.Handle("POST /api/v1/auth/{collection}/password/reset/request", a.credential(a.resetRequest))
	mux.Handle("POST /api/v1/auth/{collection}/password/reset/confirm", a.credential(a.resetConfirm))
	mux.Handle("POST /api/v1/auth/{collection}/verify/request", a.credential(a.verifyRequest))
	mux.Handle("POST /api/v1/auth/{collection}/verify/confirm", a.credential(a.verifyConfirm))
	mux.Handle("GET /api/v1/auth/{collection}/oauth2/{provider}", a.handle(a.oauthStart))
	mux.Handle("GET /api/v1/auth/{collection}/oauth2/{provider}/callback", a.handle(a.oauthCallback))
	mux.Handle("POST /api/v1/auth/{collection}/mfa/enroll", a.handle(a.mfaEnroll))
	mux.Handle("POST /api/v1/auth/{collection}/mfa/confirm", a.handle(a.mfaConfirm))
	mux.Handle("POST /api/v1/auth/{collection}/mfa/disable", a.handle(a.mfaDisable))
	mux.Handle("POST /api/v1/auth/{collection}/mfa/verify", a.credential(a.mfaVerify))
	mux.Handle("GET /api/v1/auth/{collection}/sessions", a.handle(a.sessions))
	mux.Handle("DELETE /api/v1/auth/{collection}/sessions", a.handle(a.revokeAllSessions))
	mux.Handle("DELETE /api/v1/auth/{collection}/sessions/{id}", a.handle(a.revokeSession))

	mux.Handle("GET /api/v1/audit", a.superuser(a.listAudit))
	mux.Handle("GET /api/v1/keys", a.handle(a.listKeys))
	mux.Handle("POST /api/v1/keys", a.handle(a.createKey))
	mux.Handle("DELETE /api/v1/keys/{id}", a.handle(a.revokeKey))
	mux.Handle("GET /api/v1/collections", a.superuser(a.listCollections))
	mux.Handle("POST /api/v1/collections", a.superuser(a.createCollection))
	mux.Handle("GET /api/v1/collections/{name}", a.superuser(a.getCollection))
	mux.Handle("PATCH /api/v1/collections/{name}", a.superuser(a.updateCollection))
	mux.Handle("DELETE /api/v1/collections/{name}", a.superuser(a.deleteCollection))

	// Until per-collection access rules exist, records are for superusers
	// only: everyone else is denied.
	a.mount(mux, "/api/v1/jobs", a.jobs)
	a.mount(mux, "/api/v1/webhooks", a.webhooks)
	mux.Handle("GET /api/v1/realtime", a.handle(a.realtimeSSE))
	mux.Handle("GET /api/v1/realtime/ws", a.handle(a.realtimeWS))
	mux.Handle("GET /api/v1/collections/{name}/records", a.recordAccess(a.listRecords))
	mux.Handle("POST /api/v1/collections/{name}/records", a.recordAccess(a.createRecord))
	mux.Handle("GET /api/v1/collections/{name}/records/{id}", a.recordAccess(a.getRecord))
	mux.Handle("PATCH /api/v1/collections/{name}/records/{id}", a.recordAccess(a.patchRecord))
	mux.Handle("PUT /api/v1/collections/{name}/records/{id}", a.recordAccess(a.putRecord))
	mux.Handle("DELETE /api/v1/collections/{name}/records/{id}", a.recordAccess(a.deleteRecord))
	mux.Handle("POST /api/v1/collections/{name}/records/{id}/increment", a.recordAccess(a.incrementRecord))
}

// handlerFunc is a handler that returns its error for one place to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle serves h in the "api" rate-limit group.
func (a *API) handle(h handlerFunc) http.Handler { return a.serve(groupAPI, h) }

// credential serves h, a route that takes a credential or sends an email,
// in the "auth" rate-limit group: a tighter budget per client address.
func (a *API) credential(h handlerFunc) http.Handler { return a.serve(groupAuth, h) }

func (a *API) serve(group string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := a.limits.check(w, r, group)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			httpx.Error(w, r, a.log, err)
		}
	})
}

// authenticate reads a bearer token. A request without one is anonymous; a
// request with a bad one is refused.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		key := r.Header.Get("X-API-Key")
		// Browsers cannot set headers on EventSource and WebSocket
		// requests: realtime also takes the token as access_token.
		if h == "" && strings.HasPrefix(r.URL.Path, "/api/v1/realtime") {
			if t := r.URL.Query().Get("access_token"); t != "" {
				h = "Bearer " + t
			}
		}
		if scheme, token, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(token, "sk_") {
			key = token
		}
		if key != "" {
			p, err := a.ident.AuthenticateKey(r.Context(), strings.TrimSpace(key))
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
				httpx.Error(w, r, a.log, err)
				return
			}
			telemetry.SetUser(r.Context(), p.ID)
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
			return
		}
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			httpx.Error(w, r, a.log, apperr.New(apperr.Unauthorized, "the Authorization header must be \"Bearer <token>\""))
			return
		}
		claims, err := a.signer.Verify(strings.TrimSpace(token), a.now())
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
			httpx.Error(w, r, a.log, apperr.Wrap(apperr.Unauthorized, err, "the access token is invalid or expired"))
			return
		}
		if claims.Role != auth.RoleSuperuser && claims.Role != auth.RoleUser {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
			httpx.Error(w, r, a.log, apperr.New(apperr.Unauthorized, "this token is not an access token"))
			return
		}
		p := &auth.Principal{ID: claims.Subject, Role: claims.Role, Collection: claims.Collection, SessionID: claims.SessionID}
		if p.SessionID != "" {
			if err := a.checkSession(r.Context(), p); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="strata", error="invalid_token"`)
				httpx.Error(w, r, a.log, err)
				return
			}
		}
		telemetry.SetUser(r.Context(), p.ID)
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// superuser lets only superusers through: anonymous callers get 401,
// everyone else 403.
func (a *API) superuser(h handlerFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		p := auth.PrincipalFrom(r.Context())
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
			return apperr.New(apperr.Unauthorized, "sign in as a superuser (POST /api/v1/admin/login) and send the token as Authorization: Bearer")
		}
		if !p.IsSuperuser() {
			return apperr.New(apperr.Forbidden, "only superusers may do this")
		}
		if !p.Allows("*", "*") {
			return apperr.New(apperr.Forbidden, "an API key with limited scopes cannot do this")
		}
		return h(w, r)
	})
}

// recordAccess tells the records service who calls: the collection's rules
// decide what a caller other than a superuser may do.
func (a *API) recordAccess(h handlerFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		caller, err := a.caller(r)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(records.WithCaller(r.Context(), caller)))
	})
}

// caller builds the records caller of a request, with the values of the
// @request variables of rules.
func (a *API) caller(r *http.Request) (*records.Caller, error) {
	p := auth.PrincipalFrom(r.Context())
	if p.IsSuperuser() {
		if p.Scopes != nil {
			return &records.Caller{Superuser: true, Principal: p}, nil
		}
		return records.System, nil
	}
	req := &query.Request{Method: r.Method, Now: a.now(), Query: map[string]string{}}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			req.Query[k] = v[0]
		}
	}
	if p != nil {
		c, err := a.recs.Collection(r.Context(), p.Collection)
		if err != nil {
			return nil, apperr.New(apperr.Unauthorized, "the account's collection is gone; sign in again")
		}
		rec := p.Account
		if rec == nil || rec.Collection != c {
			if rec, err = a.recs.Get(records.WithCaller(r.Context(), records.System), p.Collection, p.ID); err != nil {
				return nil, apperr.New(apperr.Unauthorized, "the account is gone; sign in again")
			}
		}
		req.AuthSchema = c
		req.Auth = map[string]any{"id": rec.ID, "collection": c.Name}
		for k, v := range rec.Values {
			if k != "id" && k != "collection" {
				req.Auth[k] = v
			}
		}
	}
	return &records.Caller{Request: req, Principal: p}, nil
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	status := "ok"
	if a.health.Draining() {
		status = "draining"
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": status})
}

// readyz reports every component; it answers 503 while any is down or the
// node drains, so load balancers send traffic elsewhere.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	rep := a.health.Check(r.Context())
	if rep.Ready() {
		httpx.JSON(w, http.StatusOK, rep)
		return
	}
	reason := "draining: the node is shutting down"
	if rep.Status != "draining" {
		var down []string
		for name, c := range rep.Components {
			if c.Status != "up" {
				down = append(down, name+" "+c.Error)
			}
		}
		slices.Sort(down)
		reason = strings.Join(down, "; ")
		a.log.WarnContext(r.Context(), "not ready", "components", reason)
	}
	p := httpx.ProblemFor(apperr.New(apperr.Unavailable, "not ready: %s", reason))
	p.Components = rep.Components
	httpx.WriteProblem(w, p)
}

// collectionLimit returns the rate limit of a collection by name.
func collectionLimit(recs *records.Service) func(string) string {
	if recs == nil {
		return nil
	}
	return func(name string) string {
		if c, err := recs.Collection(context.Background(), name); err == nil {
			return c.RateLimit
		}
		return ""
	}
}

// mount serves h, when set, at path and below it, in the api rate-limit
// group.
func (a *API) mount(mux *http.ServeMux, path string, h http.Handler) {
	if h == nil {
		return
	}
	limited := a.handle(func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})
	mux.Handle(path, limited)
	mux.Handle(path+"/", limited)
}

// SuperusersOnly returns a check for handlers mounted on the API: it lets
// through superusers, and superusers' API keys whose scopes grant every
// operation on scope (such as "_jobs") or on "*".
func SuperusersOnly(scope string) func(r *http.Request) error {
	return func(r *http.Request) error {
		p := auth.PrincipalFrom(r.Context())
		if p == nil {
			return apperr.New(apperr.Unauthorized, "sign in as a superuser (POST /api/v1/admin/login) and send the token as Authorization: Bearer")
		}
		if !p.IsSuperuser() {
			return apperr.New(apperr.Forbidden, "only superusers may do this")
		}
		if !p.Allows(scope, "*") {
			return apperr.New(apperr.Forbidden, "the API key's scopes do not include %s", scope)
		}
		return nil
	}
}
