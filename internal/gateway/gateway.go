// Package gateway is the L7 gateway role: a reverse proxy in front of the
// API nodes that spreads requests by a selection policy, keeps unhealthy
// nodes out (active health checks and passive ejection), retries what is
// safe to retry, terminates TLS and passes WebSocket and SSE through.
//
// Its building blocks are net/http/httputil.ReverseProxy for the exchange
// with the client (hop-by-hop headers, upgrades, flushing) and a
// RoundTripper of its own for the choice of upstream and the retries.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Gateway. Zero durations and counts take the defaults
// named on each field; where a negative value is allowed it turns the
// feature off.
type Config struct {
	// Upstreams are the API nodes, one per entry, in the syntax of
	// ParseUpstream: "http://10.0.0.7:8090" or "http://10.0.0.8:8090 weight=3".
	Upstreams []string
	// DiscoverDNS is a host name whose A and AAAA records are upstreams too
	// (a headless Kubernetes service), at DiscoverScheme://ip:DiscoverPort,
	// looked up every DiscoverInterval (default 10s) through Resolver
	// (default net.DefaultResolver). A failed lookup keeps the last set.
	DiscoverDNS      string
	DiscoverPort     int
	DiscoverScheme   string // "http" (default) or "https"
	DiscoverInterval time.Duration
	Resolver         Resolver

	// Policy chooses an upstream per attempt: round_robin (default),
	// least_conn, weighted (by each upstream's weight) or p2c (the better of
	// two random upstreams by latency average, then by requests in flight).
	Policy string

	// Active health checks: GET HealthPath (default /readyz) on every
	// upstream each HealthInterval (default 5s; negative: no checks), with
	// HealthTimeout (default 2s). UnhealthyThreshold failures in a row
	// (default 2) take an upstream out, HealthyThreshold passes in a row
	// (default 2) bring it back. A pass is a 2xx answer.
	HealthPath         string
	HealthInterval     time.Duration
	HealthTimeout      time.Duration
	UnhealthyThreshold int
	HealthyThreshold   int

	// Passive ejection: MaxFails attempts in a row that fail (no connection,
	// a broken exchange, or a 502, 503 or 504 answer; a 500 is one
	// request's error and passes through) eject an upstream for EjectCooldown
	// (default 5s), doubled at each ejection that follows soon after the
	// last, up to MaxEjectCooldown (default 2m). MaxFails defaults to 3;
	// negative turns passive ejection off.
	MaxFails         int
	EjectCooldown    time.Duration
	MaxEjectCooldown time.Duration

	// Retries is how many more upstreams a request may be tried on (default
	// 2; negative: none). Idempotent requests (GET, HEAD, OPTIONS, PUT,
	// DELETE, TRACE, or any with an Idempotency-Key header) are retried when
	// the upstream could not be reached, the exchange broke, or it answered
	// 502, 503 or 504; other requests only when nothing reached the upstream.
	// Bodies of idempotent requests up to MaxRetryBody (default 1 MiB) are
	// buffered so that they can be sent again; larger ones are streamed and
	// retried only when no connection was made.
	Retries      int
	MaxRetryBody int64

	// Timeouts: DialTimeout (default 5s) to connect to an upstream,
	// ResponseHeaderTimeout (default 30s) for its response headers, and
	// RequestTimeout (default 60s; negative: none) for the whole request,
	// which does not apply to WebSocket upgrades and event streams.
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	RequestTimeout        time.Duration

	// Connection reuse to the upstreams: idle connections kept per upstream
	// (default 64) and how long (default 90s).
	MaxIdleConnsPerHost int
	IdleConnTimeout     time.Duration

	// FlushInterval is how often response bodies are flushed to the client
	// while they are copied; 0 flushes when the copy buffer fills, -1 after
	// every write. Event streams and bodies of unknown length are always
	// flushed after every write.
	FlushInterval time.Duration

	// TLS termination: the PEM files of the certificate chain and its key,
	// read again when their modification time or size changes (checked each
	// CertReloadInterval, default 10s). Both empty: no TLS.
	CertFile           string
	KeyFile            string
	CertReloadInterval time.Duration
	// HSTSMaxAge is the max-age of Strict-Transport-Security on responses
	// served over TLS (default 1 year; negative: no header).
	HSTSMaxAge time.Duration
	// HTTPSPort is the port RedirectHandler sends clients to (default 443).
	HTTPSPort int

	// TrustedProxies are the peers (a load balancer in front of the gateway)
	// whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and
	// Forwarded headers are kept and extended; from any other peer they are
	// replaced.
	TrustedProxies []netip.Prefix

	// StatusPath, when set, serves the status document (StatusHandler) on
	// Handler at that path instead of proxying it. DefaultStatusPath is the
	// conventional value; the document names the upstreams, so keep it off a
	// public listener unless that is wanted.
	StatusPath string

	Logger  *slog.Logger
	Metrics prometheus.Registerer // nil: metrics are kept but not exported
}

// DefaultStatusPath is the conventional path of the status document.
const DefaultStatusPath = "/gateway/status"

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	if c.DiscoverScheme == "" {
		c.DiscoverScheme = "http"
	}
	def(&c.DiscoverInterval, 10*time.Second)
	if c.HealthPath == "" {
		c.HealthPath = "/readyz"
	}
	def(&c.HealthInterval, 5*time.Second)
	def(&c.HealthTimeout, 2*time.Second)
	defInt(&c.UnhealthyThreshold, 2)
	defInt(&c.HealthyThreshold, 2)
	defInt(&c.MaxFails, 3)
	def(&c.EjectCooldown, 5*time.Second)
	def(&c.MaxEjectCooldown, 2*time.Minute)
	defInt(&c.Retries, 2)
	if c.MaxRetryBody == 0 {
		c.MaxRetryBody = 1 << 20
	}
	def(&c.DialTimeout, 5*time.Second)
	def(&c.ResponseHeaderTimeout, 30*time.Second)
	def(&c.RequestTimeout, 60*time.Second)
	defInt(&c.MaxIdleConnsPerHost, 64)
	def(&c.IdleConnTimeout, 90*time.Second)
	def(&c.CertReloadInterval, 10*time.Second)
	def(&c.HSTSMaxAge, 365*24*time.Hour)
	defInt(&c.HTTPSPort, 443)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
}

func (c *Config) validate() error {
	var errs []error
	if len(c.Upstreams) == 0 && c.DiscoverDNS == "" {
		errs = append(errs, errors.New("no upstreams: set upstreams or a DNS name to discover them"))
	}
	if c.DiscoverDNS != "" {
		if c.DiscoverPort < 1 || c.DiscoverPort > 65535 {
			errs = append(errs, fmt.Errorf("discovery port %d is not from 1 to 65535", c.DiscoverPort))
		}
		if c.DiscoverScheme != "http" && c.DiscoverScheme != "https" {
			errs = append(errs, fmt.Errorf("discovery scheme %q is not http or https", c.DiscoverScheme))
		}
		if c.DiscoverInterval < 0 {
			errs = append(errs, errors.New("discovery interval is negative"))
		}
	}
	if c.HealthPath[0] != '/' {
		errs = append(errs, fmt.Errorf("health path %q does not start with /", c.HealthPath))
	}
	for name, v := range map[string]time.Duration{
		"health timeout": c.HealthTimeout, "eject cool-down": c.EjectCooldown,
		"max eject cool-down": c.MaxEjectCooldown, "dial timeout": c.DialTimeout,
		"response header timeout": c.ResponseHeaderTimeout, "idle connection timeout": c.IdleConnTimeout,
		"certificate reload interval": c.CertReloadInterval,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative", name))
		}
	}
	if c.UnhealthyThreshold < 0 || c.HealthyThreshold < 0 {
		errs = append(errs, errors.New("health thresholds must be positive"))
	}
	if c.MaxIdleConnsPerHost < 0 {
		errs = append(errs, errors.New("max idle connections per host is negative"))
	}
	if c.MaxRetryBody < 0 {
		errs = append(errs, errors.New("max retry body is negative"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("TLS needs both a certificate file and a key file"))
	}
	if c.HTTPSPort < 1 || c.HTTPSPort > 65535 {
		errs = append(errs, fmt.Errorf("HTTPS port %d is not from 1 to 65535", c.HTTPSPort))
	}
	if c.StatusPath != "" && c.StatusPath[0] != '/' {
		errs = append(errs, fmt.Errorf("status path %q does not start with /", c.StatusPath))
	}
	return errors.Join(errs...)
}

// Gateway is a reverse proxy over a pool of upstreams. It is safe for
// concurrent use.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	m       *metrics
	pool    *pool
	policy  policy
	tr      *http.Transport
	proxy   *httputil.ReverseProxy
	certs   *certReloader // nil without TLS
	disc    *discovery    // nil without DNS discovery
	handler http.Handler

	mu      sync.Mutex
	running bool
	closed  bool
	done    chan struct{}
	loops   sync.WaitGroup
}

// New builds a Gateway from cfg. It parses the upstreams and, with TLS,
// loads the certificate; it starts nothing (see Run).
func New(cfg Config) (*Gateway, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	pol, err := newPolicy(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	g := &Gateway{
		cfg:    cfg,
		log:    cfg.Logger,
		m:      newMetrics(cfg.Metrics),
		policy: pol,
		done:   make(chan struct{}),
	}
	g.pool = newPool(g.m)
	var specs []UpstreamSpec
	seen := map[string]bool{}
	for _, s := range cfg.Upstreams {
		spec, err := ParseUpstream(s)
		if err != nil {
			return nil, fmt.Errorf("gateway config: %w", err)
		}
		if seen[spec.URL.String()] {
			return nil, fmt.Errorf("gateway config: upstream %q listed twice", spec.URL)
		}
		seen[spec.URL.String()] = true
		specs = append(specs, spec)
	}
	g.pool.setStatic(specs)
	if cfg.DiscoverDNS != "" {
		g.disc = &discovery{host: cfg.DiscoverDNS}
	}
	if cfg.CertFile != "" {
		g.certs, err = newCertReloader(cfg.CertFile, cfg.KeyFile, g.log)
		if err != nil {
			return nil, fmt.Errorf("gateway config: %w", err)
		}
	}
	g.tr = &http.Transport{
		Proxy: nil, // never an environment proxy between the gateway and its nodes
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // bounded per host below
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		Transport:      roundTripper{g},
		FlushInterval:  cfg.FlushInterval,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BufferPool:     newBufferPool(),
	}
	status := g.StatusHandler()
	g.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case cfg.StatusPath != "" && r.URL.Path == cfg.StatusPath:
			status.ServeHTTP(w, r)
		case r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			// The gateway's own liveness: it answers while it runs.
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"ok"}` + "\n"))
		case r.URL.Path == "/readyz" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			// The gateway's readiness: some upstream can take a request.
			status.ServeHTTP(w, r)
		default:
			g.serveProxy(w, r)
		}
	})
	return g, nil
}

// Handler returns the proxy. /healthz and /readyz are the gateway's own
// (alive; an upstream available), and requests for Config.StatusPath,
// when set, get the status document.
func (g *Gateway) Handler() http.Handler { return g.handler }

// TLSConfig returns the server TLS configuration (certificates from
// Config.CertFile and KeyFile, reloaded on change; ALPN h2 and http/1.1),
// or nil when TLS is off.
func (g *Gateway) TLSConfig() *tls.Config {
	if g.certs == nil {
		return nil
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: g.certs.getCertificate,
	}
}

// Run runs the background loops (health checks, DNS discovery, certificate
// reload) until ctx ends or Close is called. It returns at once if there is
// nothing to run, and an error if called twice or after Close.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.closed || g.running {
		g.mu.Unlock()
		return errors.New("gateway: Run called twice or after Close")
	}
	g.running = true
	g.loops.Add(1)
	g.mu.Unlock()
	defer g.loops.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-g.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	if g.disc != nil {
		wg.Go(func() { g.discoveryLoop(ctx) })
	}
	if g.cfg.HealthInterval > 0 {
		wg.Go(func() { g.healthLoop(ctx) })
	}
	if g.certs != nil {
		wg.Go(func() { g.certLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// Close stops the background loops, waits for them, and closes idle
// connections to the upstreams. Requests in flight are not interrupted;
// stop the http.Server first to drain them.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.done)
	}
	g.mu.Unlock()
	g.loops.Wait()
	g.tr.CloseIdleConnections()
	return nil
}

// Serve serves Handler on ln, over TLS when it is configured, until ctx
// ends; it then shuts the server down, giving requests in flight up to
// 10 seconds. It returns nil after a shutdown caused by ctx.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	return serve(ctx, ln, g.handler, g.TLSConfig(), g.log)
}

// ServeRedirect serves RedirectHandler on ln until ctx ends.
func (g *Gateway) ServeRedirect(ctx context.Context, ln net.Listener) error {
	return serve(ctx, ln, g.RedirectHandler(), nil, g.log)
}

func serve(ctx context.Context, ln net.Listener, h http.Handler, tc *tls.Config, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
		TLSConfig:         tc,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	<-errc
	return err
}
