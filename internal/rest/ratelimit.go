package rest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/ratelimit"
)

// RateLimits configures how many requests each client may make. Every
// route is in one of two groups: "auth", the routes that take a
// credential or send an email (sign-in, sign-up, token refresh, password
// reset, email verification, MFA verification), limited per client IP
// address; and "api", every other route, limited per API key, per user
// (or superuser), or, for anonymous callers, per client IP address. An
// IPv6 client is counted by its /64, the block one host usually holds.
// /healthz, /readyz and /metrics are never limited.
//
// Every limited response carries the RateLimit-Policy and RateLimit
// fields (draft-ietf-httpapi-ratelimit-headers); a refused request gets a
// 429 problem document with Retry-After. When the Limiter's backend
// cannot be reached, its FailPolicy decides: FailOpen lets requests
// through (RateLimit-Policy only: the state is unknown), FailClosed
// refuses them with 503 and Retry-After, since the client has not
// exceeded anything.
type RateLimits struct {
	// Limiter keeps the state; nil disables rate limiting.
	Limiter ratelimit.Limiter
	// Anonymous limits each anonymous client of the api group, by address;
	// the zero Limit is no limit.
	Anonymous ratelimit.Limit
	// User limits each API key and each signed-in user or superuser in
	// the api group; the zero Limit is no limit.
	User ratelimit.Limit
	// Credentials limits each client address on the auth group's routes;
	// the zero Limit is no limit.
	Credentials ratelimit.Limit
}

// Route groups.
const (
	groupAPI  = "api"
	groupAuth = "auth"
)

// policy is one limit and how it is named to clients.
type policy struct {
	name  string // the RateLimit-Policy item name
	who   string // what one budget belongs to, for problem details
	limit ratelimit.Limit
}

// limiter applies RateLimits to requests.
type limiter struct {
	l                      ratelimit.Limiter
	anon, user, key, creds policy
	trusted                []netip.Prefix
	log                    *slog.Logger
	// decisions are strata_ratelimit_decisions_total for each group and
	// decision; failures counts decisions the backend could not make.
	apiAllowed, apiDenied, authAllowed, authDenied prometheus.Counter
	failures                                       prometheus.Counter
	// warned is set once the untrusted forwarding headers are logged.
	warned atomic.Bool
	// keyLimits holds the policies of API keys and collections with limits
	// of their own.
	keyLimits sync.Map
	// collection returns the rate limit set on a collection, "" for none.
	collection func(name string) string
}

func newLimiter(o RateLimits, trusted []netip.Prefix, reg prometheus.Registerer, log *slog.Logger, collection func(string) string) *limiter {
	if o.Limiter == nil {
		return nil
	}
	f := promauto.With(reg)
	decisions := f.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_ratelimit_decisions_total",
		Help: "Rate-limit decisions, by route group (api or auth) and decision (allowed or denied).",
	}, []string{"group", "decision"})
	return &limiter{
		l:           o.Limiter,
		anon:        policy{name: "anonymous", who: "for each client address", limit: o.Anonymous},
		user:        policy{name: "user", who: "for each user", limit: o.User},
		key:         policy{name: "user", who: "for each API key", limit: o.User},
		creds:       policy{name: "auth", who: "on sign-in, sign-up and other credential routes for each client address", limit: o.Credentials},
		trusted:     trusted,
		log:         log,
		collection:  collection,
		apiAllowed:  decisions.WithLabelValues(groupAPI, "allowed"),
		apiDenied:   decisions.WithLabelValues(groupAPI, "denied"),
		authAllowed: decisions.WithLabelValues(groupAuth, "allowed"),
		authDenied:  decisions.WithLabelValues(groupAuth, "denied"),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_ratelimit_backend_failures_total",
			Help: "Rate-limit decisions the backend (Redis) could not make, decided by the fail policy instead.",
		}),
	}
}

// keyPolicy is the policy of an API key with a limit of its own.
func (l *limiter) keyPolicy(limit string) *policy {
	return l.parsed(limit, "key", "for this API key")
}

// parsed returns the policy of a limit set on an API key or a collection;
// parsed limits are kept, as they are few and change rarely.
func (l *limiter) parsed(limit, name, who string) *policy {
	k := name + "\x00" + who + "\x00" + limit
	if v, ok := l.keyLimits.Load(k); ok {
		return v.(*policy)
	}
	pol := &policy{name: name, who: who, limit: l.key.limit}
	if lim, err := ratelimit.ParseLimit(limit); err == nil {
		pol.limit = lim
	}
	l.keyLimits.Store(k, pol)
	return pol
}

// check counts r against its budget in group, sets the RateLimit fields
// on w and returns the error to answer with when r may not proceed. A nil
// limiter allows everything.
func (l *limiter) check(w http.ResponseWriter, r *http.Request, group string) error {
	if l == nil {
		return nil
	}
	// The key is the group and whose budget it is: "api:key:ID",
	// "api:superuser:ID", "api:user:COLLECTION:ID", "api:ip:ADDRESS",
	// "auth:ip:ADDRESS".
	var pol *policy
	var key string
	p := auth.PrincipalFrom(r.Context())
	switch {
	case group == groupAuth:
		pol = &l.creds
	case p == nil:
		pol = &l.anon
	case p.KeyID != "":
		pol, key = &l.key, group+":key:"+p.KeyID
		if p.RateLimit != "" {
			pol = l.keyPolicy(p.RateLimit)
		}
	case p.IsSuperuser():
		pol, key = &l.user, group+":superuser:"+p.ID
	default:
		pol, key = &l.user, group+":user:"+p.Collection+":"+p.ID
	}
	// A collection with a limit of its own replaces the default on its
	// record routes, with a budget of each client per collection.
	if group == groupAPI && l.collection != nil && strings.Contains(r.Pattern, "/records") {
		if limit := l.collection(r.PathValue("name")); limit != "" {
			name := r.PathValue("name")
			pol = l.parsed(limit, "collection", "for each client on "+name)
			if key == "" {
				key = group + ":ip:" + l.clientKey(r)
			}
			key = "coll:" + name + ":" + key
		}
	}
	if pol.limit.Rate == 0 {
		return nil
	}
	if key == "" {
		key = group + ":ip:" + l.clientKey(r)
	}
	res, err := l.l.Allow(r.Context(), key, pol.limit, 1)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return apperr.Wrap(apperr.Unavailable, err, "the request ended before its rate limit was checked")
		}
		return err // an invalid limit: a bug, logged as internal
	}
	allowed, denied := l.apiAllowed, l.apiDenied
	if group == groupAuth {
		allowed, denied = l.authAllowed, l.authDenied
	}
	if res.Allowed {
		allowed.Inc()
	} else {
		denied.Inc()
	}
	h := w.Header()
	if res.Fallback {
		l.failures.Inc()
		// The key's state is unknown: state the policy, not a remainder.
		h.Set("RateLimit-Policy", ratelimit.FormatPolicy(pol.name, pol.limit))
		if !res.Allowed {
			secs := ratelimit.RetryAfterSeconds(res)
			return &apperr.Error{Kind: apperr.Unavailable, RetryAfter: int(secs),
				Msg: "rate limits cannot be checked right now, so requests are refused; retry in " + seconds(secs)}
		}
		return nil
	}
	ratelimit.SetHeaders(h, pol.name, res)
	if !res.Allowed {
		secs := ratelimit.RetryAfterSeconds(res)
		return &apperr.Error{Kind: apperr.RateLimited, RetryAfter: int(secs),
			Msg: "too many requests: the " + pol.name + " rate limit " + pol.who + " is " + pol.limit.String() +
				"; retry in " + seconds(secs)}
	}
	return nil
}

func seconds(n int64) string {
	if n == 1 {
		return "1 second"
	}
	return strconv.FormatInt(n, 10) + " seconds"
}

// clientKey returns the address whose budget r counts against: the client
// behind the trusted proxies, with an IPv6 address cut to its /64.
func (l *limiter) clientKey(r *http.Request) string {
	a := ratelimit.ClientIP(r, l.trusted)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	l.warnForwarded(r)
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func trusted(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// warnForwarded logs, once, a request with forwarding headers from a peer
// that is not a trusted proxy: if the peer is the app's own load balancer,
// every client behind it shares one budget.
func (l *limiter) warnForwarded(r *http.Request) {
	if l.warned.Load() || (r.Header.Get(ratelimit.HeaderXForwardedFor) == "" && r.Header.Get(ratelimit.HeaderForwarded) == "") {
		return
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || trusted(peer.Addr().Unmap(), l.trusted) || !l.warned.CompareAndSwap(false, true) {
		return
	}
	l.log.WarnContext(r.Context(), "a request has forwarding headers from a peer that is not a trusted proxy; "+
		"if it is a proxy or load balancer of this deployment, add it to trusted_proxies, "+
		"or every client behind it shares one rate limit", "peer", peer.Addr().Unmap().String())
}
