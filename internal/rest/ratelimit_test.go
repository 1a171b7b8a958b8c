package rest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/ratelimit/memory"
	redislimit "github.com/strata-dev/strata/internal/ratelimit/redis"
	"github.com/strata-dev/strata/internal/redistest"
	"github.com/strata-dev/strata/internal/rest"
)

// The address httptest.NewRequest gives every request, which newEnv's
// superuser login counts against the auth group.
const defaultPeer = "192.0.2.1:1234"

// backend makes a Limiter for one test.
type backend struct {
	name string
	make func(t *testing.T) ratelimit.Limiter
}

func memoryBackend(t *testing.T) ratelimit.Limiter {
	l := memory.New(memory.Config{})
	t.Cleanup(func() { l.Close() })
	return l
}

// backends are the in-process limiter and, when the tests can reach one,
// a Redis limiter with its own key prefix.
var backends = []backend{
	{"memory", memoryBackend},
	{"redis", func(t *testing.T) ratelimit.Limiter {
		return redisLimiter(t, redistest.Client(t), redistest.Prefix(t), ratelimit.FailOpen)
	}},
}

func redisLimiter(t *testing.T, c goredis.UniversalClient, prefix string, policy ratelimit.FailPolicy) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(redislimit.Config{Client: c, Prefix: prefix, FailPolicy: policy, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustLimit(t testing.TB, s string) ratelimit.Limit {
	t.Helper()
	l, err := ratelimit.ParseLimit(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// withLimits sets the API's rate limits ("off" or "" for none) and
// trusted proxies.
func withLimits(t *testing.T, lim ratelimit.Limiter, anon, user, creds string, trusted ...string) func(*rest.Options) {
	parse := func(s string) ratelimit.Limit {
		if s == "off" || s == "" {
			return ratelimit.Limit{}
		}
		return mustLimit(t, s)
	}
	return func(o *rest.Options) {
		o.RateLimits = rest.RateLimits{Limiter: lim, Anonymous: parse(anon), User: parse(user), Credentials: parse(creds)}
		for _, p := range trusted {
			o.TrustedProxies = append(o.TrustedProxies, netip.MustParsePrefix(p))
		}
	}
}

// from sends a request from the socket address peer through h; headers
// come in name, value pairs.
func (e *testEnv) from(h http.Handler, peer, method, path string, body any, headers ...string) *response {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, r)
	req.RemoteAddr = peer
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return &response{t: e.t, ResponseRecorder: rec, method: method, path: path}
}

var rateLimitRE = regexp.MustCompile(`^"([a-z]+)";r=(\d+);t=(\d+)$`)

// remaining checks the RateLimit field of res names policy and returns
// its remaining quota.
func (r *response) remaining(policy string) int {
	r.t.Helper()
	m := rateLimitRE.FindStringSubmatch(r.Header().Get("RateLimit"))
	if m == nil || m[1] != policy {
		r.t.Fatalf("%s %s: RateLimit %q, want policy %q", r.method, r.path, r.Header().Get("RateLimit"), policy)
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// denied checks res is a 429 problem of policy and returns Retry-After.
func (r *response) denied(policy string) int {
	r.t.Helper()
	p := r.problem(http.StatusTooManyRequests)
	if p["type"] != "urn:strata:problem:rate-limited" || p["title"] != "Too Many Requests" ||
		!strings.Contains(p["detail"].(string), "the "+policy+" rate limit") ||
		!strings.Contains(p["detail"].(string), "retry in ") {
		r.t.Errorf("%s %s: 429 problem %v", r.method, r.path, p)
	}
	if r.remaining(policy) != 0 {
		r.t.Errorf("%s %s: denied with RateLimit %q", r.method, r.path, r.Header().Get("RateLimit"))
	}
	ra, err := strconv.Atoi(r.Header().Get("Retry-After"))
	if err != nil || ra < 1 {
		r.t.Fatalf("%s %s: Retry-After %q", r.method, r.path, r.Header().Get("Retry-After"))
	}
	return ra
}

func TestRateLimitAnonymous(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, "sqlite", withLimits(t, be.make(t), "5/min", "off", "off"))
			const jwks = "/.well-known/jwks.json"
			for want := 4; want >= 0; want-- {
				res := e.from(e.h, defaultPeer, "GET", jwks, nil).status(200)
				if got := res.remaining("anonymous"); got != want {
					t.Fatalf("remaining %d, want %d", got, want)
				}
				if got := res.Header().Get("RateLimit-Policy"); got != `"anonymous";q=5;w=60` {
					t.Errorf("RateLimit-Policy %q", got)
				}
			}
			res := e.from(e.h, defaultPeer, "GET", jwks, nil)
			if ra := res.denied("anonymous"); ra < 11 || ra > 12 {
				t.Errorf("Retry-After %d, want 12 (one request every 12 s)", ra)
			}
			if !strings.Contains(res.json()["detail"].(string), "5/min") {
				t.Errorf("detail does not name the limit: %s", res.Body)
			}

			// Another address has its own budget; an IPv6 client is counted
			// by its /64.
			e.from(e.h, "198.51.100.7:4000", "GET", jwks, nil).status(200)
			for i := range 5 {
				e.from(e.h, "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:4000", "GET", jwks, nil).status(200)
			}
			e.from(e.h, "[2001:db8:1:2:ffff::9]:4000", "GET", jwks, nil).denied("anonymous")
			e.from(e.h, "[2001:db8:1:3::1]:4000", "GET", jwks, nil).status(200)

			// X-Forwarded-For from an untrusted peer names no one.
			e.from(e.h, defaultPeer, "GET", jwks, nil, "X-Forwarded-For", "203.0.113.5").denied("anonymous")
			e.from(e.h, defaultPeer, "GET", jwks, nil, "Forwarded", "for=203.0.113.5").denied("anonymous")
		})
	}
}

func TestRateLimitTrustedProxy(t *testing.T) {
	e := newEnv(t, "sqlite", withLimits(t, memoryBackend(t), "2/min", "off", "off", "10.0.0.0/8"))
	const path = "/.well-known/jwks.json"
	proxy := "10.1.2.3:5000"
	// Clients behind the proxy each have their budget.
	for range 2 {
		e.from(e.h, proxy, "GET", path, nil, "X-Forwarded-For", "203.0.113.5").status(200)
	}
	e.from(e.h, proxy, "GET", path, nil, "X-Forwarded-For", "203.0.113.5").denied("anonymous")
	e.from(e.h, proxy, "GET", path, nil, "X-Forwarded-For", "203.0.113.6").status(200)
	// A hop the client wrote itself, left of the one the proxy added, is
	// not believed.
	e.from(e.h, proxy, "GET", path, nil, "X-Forwarded-For", "198.51.100.1, 203.0.113.5").denied("anonymous")
	e.from(e.h, proxy, "GET", path, nil, "Forwarded", "for=203.0.113.5").denied("anonymous")
	// The proxy's own requests are its own.
	e.from(e.h, proxy, "GET", path, nil).status(200)
}

// Signed-in callers count per user and per API key, not per address.
func TestRateLimitPerUser(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, "sqlite", withLimits(t, be.make(t), "1/min", "4/min", "100/min"))
			const path = "/api/v1/collections"
			e.request("POST", path, map[string]any{"name": "members", "type": "auth", "rules": map[string]any{"create": ""}}).status(201)
			key := e.request("POST", "/api/v1/keys", map[string]any{"name": "ci"}).status(201).json()["key"].(string)
			base := "/api/v1/auth/members/"
			e.anon("POST", base+"register", map[string]any{"email": "ada@example.com", "password": "a long password"}).status(201)
			user := e.anon("POST", base+"login", map[string]any{"email": "ada@example.com", "password": "a long password"}).
				status(200).json()["access_token"].(string)

			// The anonymous budget of the address is spent...
			e.anon("GET", "/.well-known/jwks.json", nil).status(200)
			e.anon("GET", "/.well-known/jwks.json", nil).denied("anonymous")
			// ... but the superuser (two requests made above), the user and
			// the key each have their own.
			for want := 1; want >= 0; want-- {
				if got := e.request("GET", path, nil).status(200).remaining("user"); got != want {
					t.Errorf("superuser remaining %d, want %d", got, want)
				}
			}
			e.request("GET", path, nil).denied("user")
			for want := 3; want >= 0; want-- {
				if got := e.as(user, "GET", base+"me", nil).status(200).remaining("user"); got != want {
					t.Errorf("user remaining %d, want %d", got, want)
				}
			}
			res := e.as(user, "GET", base+"me", nil)
			res.denied("user")
			if !strings.Contains(res.json()["detail"].(string), "for each user") {
				t.Errorf("detail %s", res.Body)
			}
			// The same user from another address shares the budget.
			e.from(e.h, "198.51.100.7:1", "GET", base+"me", nil, "Authorization", "Bearer "+user).denied("user")
			for want := 3; want >= 0; want-- {
				if got := e.send("GET", path, nil, "X-API-Key", key).status(200).remaining("user"); got != want {
					t.Errorf("API key remaining %d, want %d", got, want)
				}
			}
			res = e.send("GET", path, nil, "Authorization", "Bearer "+key)
			res.denied("user")
			if !strings.Contains(res.json()["detail"].(string), "for each API key") {
				t.Errorf("detail %s", res.Body)
			}
		})
	}
}

// The credential routes have their own, tighter budget per address,
// apart from the rest of the API.
func TestRateLimitAuthGroup(t *testing.T) {
	e := newEnv(t, "sqlite", withLimits(t, memoryBackend(t), "100/min", "100/min", "3/min"))
	e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth"}).status(201)
	login := map[string]any{"email": adminEmail, "password": adminPassword}
	// newEnv's superuser login took the first of 3.
	for want := 1; want >= 0; want-- {
		if got := e.anon("POST", "/api/v1/admin/login", login).status(200).remaining("auth"); got != want {
			t.Errorf("remaining %d, want %d", got, want)
		}
	}
	res := e.anon("POST", "/api/v1/auth/members/login", map[string]any{"email": "a@example.com", "password": "x"})
	if ra := res.denied("auth"); ra != 20 {
		t.Errorf("Retry-After %d, want 20", ra)
	}
	e.anon("POST", "/api/v1/auth/members/password/reset/request", map[string]any{"email": "a@example.com"}).denied("auth")
	e.anon("POST", "/api/v1/auth/members/refresh", map[string]any{"refresh_token": "x"}).denied("auth")
	// A signed-in caller is limited by address on these routes too.
	e.request("POST", "/api/v1/auth/members/mfa/verify", map[string]any{}).denied("auth")
	// The rest of the API is not affected, and another address may sign in.
	if got := e.anon("GET", "/.well-known/jwks.json", nil).status(200).remaining("anonymous"); got != 99 {
		t.Errorf("anonymous remaining %d, want 99", got)
	}
	e.from(e.h, "198.51.100.7:1", "POST", "/api/v1/admin/login", login).status(200).remaining("auth")
}

func TestRateLimitNeverLimited(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, "sqlite", withLimits(t, memoryBackend(t), "1/h", "off", "off"), func(o *rest.Options) {
		o.Metrics = reg
		o.MetricsHandler = http.NotFoundHandler()
	})
	e.anon("GET", "/.well-known/jwks.json", nil).status(200)
	e.anon("GET", "/.well-known/jwks.json", nil).denied("anonymous")
	for range 20 {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			res := e.anon("GET", path, nil)
			if res.Code == http.StatusTooManyRequests || res.Header().Get("RateLimit") != "" || res.Header().Get("RateLimit-Policy") != "" {
				t.Fatalf("%s is rate limited: %d %v", path, res.Code, res.Header())
			}
		}
	}
	// "off" lets a group through without counting or headers; here the
	// superuser's limit is off.
	for range 20 {
		if res := e.request("GET", "/api/v1/collections", nil).status(200); res.Header().Get("RateLimit") != "" {
			t.Fatalf("limit off, yet RateLimit %q", res.Header().Get("RateLimit"))
		}
	}
	if got := counter(t, reg, "strata_ratelimit_decisions_total", "group", "api", "decision", "allowed"); got != 1 {
		t.Errorf("allowed api decisions %v, want 1", got)
	}
	if got := counter(t, reg, "strata_ratelimit_decisions_total", "group", "api", "decision", "denied"); got != 1 {
		t.Errorf("denied api decisions %v, want 1", got)
	}
	// newEnv signs in with the auth limit off: no decision.
	if got := counter(t, reg, "strata_ratelimit_decisions_total", "group", "auth", "decision", "allowed"); got != 0 {
		t.Errorf("allowed auth decisions %v, want 0", got)
	}
}

// With no Limiter, nothing is limited.
func TestRateLimitNone(t *testing.T) {
	e := newEnv(t, "sqlite")
	for range 50 {
		if res := e.anon("GET", "/.well-known/jwks.json", nil).status(200); res.Header().Get("RateLimit-Policy") != "" {
			t.Fatalf("RateLimit-Policy without a limiter: %v", res.Header())
		}
	}
}

// counter returns the value of the counter name with the labels (name,
// value pairs) in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

// Two nodes sharing one Redis share one budget per client.
func TestRateLimitAcrossNodes(t *testing.T) {
	prefix := redistest.Prefix(t)
	var opts rest.Options
	e := newEnv(t, "sqlite", withLimits(t, redisLimiter(t, redistest.Client(t), prefix, ratelimit.FailOpen), "6/min", "off", "off"),
		func(o *rest.Options) { opts = *o })
	opts.RateLimits.Limiter = redisLimiter(t, redistest.Client(t), prefix, ratelimit.FailOpen)
	nodes := []http.Handler{e.h, rest.New(opts)}
	for i := range 6 {
		res := e.from(nodes[i%2], defaultPeer, "GET", "/.well-known/jwks.json", nil).status(200)
		if got := res.remaining("anonymous"); got != 5-i {
			t.Errorf("request %d on node %d: remaining %d, want %d", i, i%2, got, 5-i)
		}
	}
	e.from(nodes[0], defaultPeer, "GET", "/.well-known/jwks.json", nil).denied("anonymous")
	e.from(nodes[1], defaultPeer, "GET", "/.well-known/jwks.json", nil).denied("anonymous")
}

// When Redis cannot be reached, fail-open lets requests through and
// counts the failure; fail-closed refuses them with 503 and Retry-After.
func TestRateLimitRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, policy := range []ratelimit.FailPolicy{ratelimit.FailOpen, ratelimit.FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			client := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 50 * time.Millisecond, MaxRetries: -1,
				ContextTimeoutEnabled: true})
			t.Cleanup(func() { client.Close() })
			lim, err := redislimit.New(redislimit.Config{Client: client, FailPolicy: policy, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			e := newEnv(t, "sqlite", withLimits(t, lim, "1/min", "off", "off"), func(o *rest.Options) { o.Metrics = reg })
			for range 3 {
				res := e.anon("GET", "/.well-known/jwks.json", nil)
				if res.Header().Get("RateLimit") != "" || res.Header().Get("RateLimit-Policy") != `"anonymous";q=1;w=60` {
					t.Errorf("headers without a backend: %v", res.Header())
				}
				if policy == ratelimit.FailOpen {
					res.status(200)
					continue
				}
				p := res.problem(http.StatusServiceUnavailable)
				if res.Header().Get("Retry-After") != "1" || !strings.Contains(p["detail"].(string), "cannot be checked") {
					t.Errorf("fail-closed answer: %v %v", res.Header(), p)
				}
			}
			if got := counter(t, reg, "strata_ratelimit_backend_failures_total"); got != 3 {
				t.Errorf("backend failures %v, want 3", got)
			}
			if lim.Errors() != 3 {
				t.Errorf("limiter errors %d, want 3", lim.Errors())
			}
			decision := "allowed"
			if policy == ratelimit.FailClosed {
				decision = "denied"
			}
			if got := counter(t, reg, "strata_ratelimit_decisions_total", "group", "api", "decision", decision); got != 3 {
				t.Errorf("%s decisions %v, want 3", decision, got)
			}
		})
	}
}

// BenchmarkHTTPRateLimit is BenchmarkHTTP's view with the superuser's
// requests counted by each limiter, under a limit they never reach: the
// cost of a decision and its headers.
func BenchmarkHTTPRateLimit(b *testing.B) {
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	o, id, tok := benchAPI(b, nil, nil)
	path := "/api/v1/collections/posts/records/" + id
	with := func(l ratelimit.Limiter) http.Handler {
		o := o
		o.RateLimits = rest.RateLimits{Limiter: l, Anonymous: lim, User: lim, Credentials: lim}
		return rest.New(o)
	}
	mem := memory.New(memory.Config{})
	b.Cleanup(func() { mem.Close() })
	b.Run("view/memory", benchGet(with(mem), tok, path))
	b.Run("view/redis", func(b *testing.B) {
		l, err := redislimit.New(redislimit.Config{Client: redistest.Client(b), Prefix: redistest.Prefix(b)})
		if err != nil {
			b.Fatal(err)
		}
		h := with(l)
		b.ResetTimer()
		benchGet(h, tok, path)(b)
	})
}

// The audit log records the client behind a trusted proxy, and the socket
// peer when the forwarding headers come from anyone else.
func TestAuditClientBehindProxy(t *testing.T) {
	e := newEnv(t, "sqlite", withLimits(t, memoryBackend(t), "off", "off", "off", "10.0.0.0/8"))
	login := map[string]any{"email": adminEmail, "password": "wrong password"}
	e.from(e.h, "10.1.2.3:5000", "POST", "/api/v1/admin/login", login, "X-Forwarded-For", "198.51.100.1, 203.0.113.5").problem(401)
	e.from(e.h, "192.0.2.9:5000", "POST", "/api/v1/admin/login", login, "X-Forwarded-For", "203.0.113.6").problem(401)
	items := e.request("GET", "/api/v1/audit?sort=created&filter="+url.QueryEscape(`event = "login.failed"`), nil).status(200).json()["items"].([]any)
	var ips []string
	for _, it := range items {
		ips = append(ips, it.(map[string]any)["ip"].(string))
	}
	if strings.Join(ips, " ") != "203.0.113.5 192.0.2.9" {
		t.Errorf("audit IPs %v, want [203.0.113.5 192.0.2.9]", ips)
	}
}

// TestRateLimitPerKey: an API key may carry a limit of its own, which
// replaces the users' default for it; a bad one is refused with the field
// named.
func TestRateLimitPerKey(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, "sqlite", withLimits(t, be.make(t), "off", "3/min", "off"))
			const path = "/api/v1/collections"
			p := e.request("POST", "/api/v1/keys", map[string]any{"name": "bad", "rate_limit": "lots"}).problem(400)
			if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "rate_limit" {
				t.Errorf("bad rate_limit: %v", p)
			}
			created := e.request("POST", "/api/v1/keys", map[string]any{"name": "batch", "rate_limit": "5/min burst 5"}).status(201).json()
			if created["rate_limit"] != "5/min burst 5" {
				t.Errorf("created key: %v", created)
			}
			fast := created["key"].(string)
			plain := e.request("POST", "/api/v1/keys", map[string]any{"name": "plain"}).status(201).json()["key"].(string)
			for want := 4; want >= 0; want-- {
				res := e.send("GET", path, nil, "X-API-Key", fast).status(200)
				if got := res.remaining("key"); got != want {
					t.Errorf("key with its own limit: remaining %d, want %d", got, want)
				}
			}
			res := e.send("GET", path, nil, "X-API-Key", fast)
			res.denied("key")
			if !strings.Contains(res.json()["detail"].(string), "for this API key") {
				t.Errorf("detail %s", res.Body)
			}
			// A key without a limit of its own keeps the users' default.
			if got := e.send("GET", path, nil, "X-API-Key", plain).status(200).remaining("user"); got != 2 {
				t.Errorf("plain key remaining %d, want 2", got)
			}
		})
	}
}

// TestRateLimitPerCollection: a collection may carry a limit of its own,
// which replaces the default on its record routes only, per client.
func TestRateLimitPerCollection(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, "sqlite", withLimits(t, be.make(t), "100/min", "off", "off"))
			e.request("POST", "/api/v1/collections", map[string]any{"name": "hot", "rate_limit": "often"}).problem(400)
			e.request("POST", "/api/v1/collections", map[string]any{"name": "hot", "rate_limit": "2/min",
				"fields": []any{map[string]any{"name": "t", "type": "text"}}, "rules": map[string]any{"list": "", "view": ""}}).status(201)
			e.request("POST", "/api/v1/collections", map[string]any{"name": "calm",
				"fields": []any{map[string]any{"name": "t", "type": "text"}}, "rules": map[string]any{"list": ""}}).status(201)
			for want := 1; want >= 0; want-- {
				if got := e.anon("GET", "/api/v1/collections/hot/records", nil).status(200).remaining("collection"); got != want {
					t.Errorf("hot remaining %d, want %d", got, want)
				}
			}
			res := e.anon("GET", "/api/v1/collections/hot/records", nil)
			res.denied("collection")
			if !strings.Contains(res.json()["detail"].(string), "for each client on hot") {
				t.Errorf("detail %s", res.Body)
			}
			// Another client has its own budget on hot; other collections
			// keep the default.
			e.from(e.h, "198.51.100.9:1", "GET", "/api/v1/collections/hot/records", nil).status(200)
			if got := e.anon("GET", "/api/v1/collections/calm/records", nil).status(200).remaining("anonymous"); got != 99 {
				t.Errorf("calm remaining %d, want 99", got)
			}
			// The limit changes with the collection.
			e.request("PATCH", "/api/v1/collections/hot", map[string]any{"rate_limit": ""}).status(200)
			e.anon("GET", "/api/v1/collections/hot/records", nil).status(200)
		})
	}
}
