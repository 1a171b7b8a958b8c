// Package app is the composition root: it turns a configuration into
// running components.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/auth"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/cache"
	memorycache "github.com/strata-dev/strata/internal/cache/memory"
	rediscache "github.com/strata-dev/strata/internal/cache/redis"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/ratelimit/memory"
	redislimit "github.com/strata-dev/strata/internal/ratelimit/redis"
	"github.com/strata-dev/strata/internal/realtime"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/telemetry"
	"github.com/strata-dev/strata/internal/webhooks"
)

// App is an open Strata: its database, services and HTTP handler.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	db      *store.DB
	recs    *records.Service
	signer  *auth.Signer
	ident   *identity.Service
	handler http.Handler
	metrics *prometheus.Registry
	// registerer is metrics, or nil when metrics are off.
	registerer prometheus.Registerer
	tracing    *telemetry.Tracing
	health     *telemetry.Health
	banner     io.Writer

	// limiter is the in-process rate limiter, nil when the state is in
	// Redis or no limit is on; redis is the client of redis_url.
	limiter *memory.Limiter
	redis   *goredis.Client
	// cache holds the records of collections with a cache policy; nil
	// when the cache is off.
	cache cache.Cache

	// broker and relay run while Serve does.
	broker   *natsbroker.Broker
	relay    atomic.Pointer[outbox.Relay]
	hub      atomic.Pointer[realtime.Hub]
	jobs     *jobs.Service
	webhooks *webhooks.Service
}

// NewLogger builds the logger the configuration asks for.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return telemetry.NewLogger(cfg.LogLevel, cfg.LogFormat, w)
}

// Options adjust Open.
type Options struct {
	// Tracing, when set, replaces the tracing the OTEL_* environment
	// variables configure.
	Tracing *telemetry.Tracing
	// Banner, when set, is where Serve prints a few lines saying where
	// Strata listens and what it runs on.
	Banner io.Writer
}

// Open opens the database and builds every component. With automigrate
// on, it applies pending migration files first.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Options) (*App, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tracing := o.Tracing
	if tracing == nil {
		var err error
		if tracing, err = telemetry.NewTracing(ctx); err != nil {
			return nil, err
		}
	}
	reg := telemetry.NewRegistry()
	// With metrics off, components get no registerer and skip measuring.
	var metrics prometheus.Registerer
	if cfg.Metrics {
		metrics = reg
	}
	db, err := store.Open(ctx, store.Params{
		Engine: cfg.Engine(), Path: cfg.SQLitePath(), URL: cfg.DB,
		Readers: cfg.SQLiteReaders, MmapSize: cfg.SQLiteMmapBytes(), MaxConns: cfg.PostgresMaxConns, Logger: log,
		Replicas: cfg.DBReplicaURLs(), ReplicaMaxLag: cfg.ReplicaMaxLag,
		Metrics: metrics, Tracer: tracing.Tracer("strata/store"),
	})
	if err != nil {
		_ = tracing.Shutdown(ctx)
		return nil, err
	}
	a := &App{cfg: cfg, log: log, db: db, metrics: reg, registerer: metrics, tracing: tracing,
		health: telemetry.NewHealth(2 * time.Second), banner: o.Banner}
	if err := a.build(ctx); err != nil {
		if a.cache != nil {
			a.cache.Close()
		}
		if a.redis != nil {
			a.redis.Close()
		}
		db.Close()
		_ = tracing.Shutdown(ctx)
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	signer, err := auth.LoadSigner(a.cfg.Dir)
	if err != nil {
		return err
	}
	// Events are written from the start (a migration or a CLI write has
	// them too); the relay that publishes them runs with Serve.
	events := &outbox.Writer{Notify: func() {
		if r := a.relay.Load(); r != nil {
			r.Notify()
		}
	}}
	if err := a.openCache(); err != nil {
		return err
	}
	recs, err := records.New(ctx, records.Options{Events: events, Tracer: a.tracing.Tracer("strata/records"),
		DB: a.db, Secret: signer.Secret("cursor"), MigrationsDir: a.cfg.MigrationsPath(),
		IdempotencyTTL: a.cfg.IdempotencyTTL, Logger: a.log,
		Cache: a.cache, Metrics: a.registerer, FlushInterval: a.cfg.CacheFlushInterval,
	})
	if err != nil {
		return err
	}
	if a.cfg.Automigrate {
		applied, err := recs.Up(ctx, a.cfg.MigrationsPath())
		if err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		for _, id := range applied {
			a.log.Info("applied migration", "id", id)
		}
	}
	a.signer, a.recs = signer, recs
	var mailer identity.Mailer
	if a.cfg.SMTPURL != "" {
		m, err := identity.NewSMTP(a.cfg.SMTPURL, a.cfg.MailFrom)
		if err != nil {
			return err
		}
		mailer = m
	}
	var blocklist map[string]bool
	if a.cfg.PasswordBlocklist != "" {
		if blocklist, err = identity.LoadBlocklist(a.cfg.PasswordBlocklist); err != nil {
			return err
		}
	}
	ident := identity.New(identity.Options{DB: a.db, Records: recs, Signer: signer, Logger: a.log, Mailer: mailer,
		MinPassword: a.cfg.PasswordMinLength, Blocklist: blocklist})
	a.ident = ident
	a.health.Add("database", a.db.Ping)
	if len(a.cfg.DBReplicaURLs()) > 0 {
		a.health.Add("replicas", a.db.ReplicaHealth)
	}
	a.health.Add("migrations", a.migrationsApplied)
	a.metrics.MustRegister(a.health)
	sqliteFile := ""
	if a.cfg.Engine() == "sqlite" {
		sqliteFile = a.cfg.SQLitePath()
	}
	telemetry.RegisterDisk(a.metrics, a.cfg.Dir, sqliteFile)
	outbox.RegisterBacklog(a.registerer, a.db)
	var metricsHandler http.Handler
	if a.cfg.Metrics && a.cfg.MetricsHTTP == "" {
		metricsHandler = telemetry.MetricsHandler(a.metrics, a.log)
	}
	limits, err := a.rateLimits()
	if err != nil {
		return err
	}
	js, err := jobs.New(jobs.Config{DB: a.db, Logger: a.log, Metrics: a.registerer,
		Queues: a.cfg.JobQueueWorkers(), Secret: signer.Secret("jobs-cursor")})
	if err != nil {
		return fmt.Errorf("open the job queue: %w", err)
	}
	a.jobs = js
	hooks, err := webhooks.New(webhooks.Config{DB: a.db, Records: recs, Jobs: js, Logger: a.log, Metrics: a.registerer,
		Tracer: a.tracing.Tracer("strata/webhooks"), AllowHosts: a.cfg.WebhookHosts(),
		DisableAfter: a.cfg.WebhookDisableAfter, Timeout: a.cfg.WebhookTimeout})
	if err != nil {
		return fmt.Errorf("open webhooks: %w", err)
	}
	a.webhooks = hooks
	a.handler = rest.New(rest.Options{
		Jobs:     jobs.Handler(js, a.log, rest.SuperusersOnly("_jobs")),
		Webhooks: webhooks.Handler(hooks, a.log, rest.SuperusersOnly("_webhooks")),
		Records:  recs, DB: a.db, Signer: signer, Identity: ident, Logger: a.log,
		MaxBodyBytes: a.cfg.MaxBodyBytes, TokenTTL: a.cfg.TokenTTL, Health: a.health,
		Metrics: a.registerer, MetricsHandler: metricsHandler, Tracer: a.tracing.Tracer("strata/http"),
		RateLimits: limits, TrustedProxies: a.cfg.Proxies(),
		Realtime: func() rest.Realtime {
			if h := a.hub.Load(); h != nil {
				return h
			}
			return nil
		},
	})
	return nil
}

// rateLimits builds the rate limiter: its state in Redis, shared by every
// node, when redis_url is set, else in this process.
func (a *App) rateLimits() (rest.RateLimits, error) {
	anon, user, creds := a.cfg.Limits()
	rl := rest.RateLimits{Anonymous: anon, User: user, Credentials: creds}
	off := ratelimit.Limit{}
	if anon == off && user == off && creds == off {
		return rl, nil
	}
	if a.cfg.RedisURL == "" {
		a.limiter = memory.New(memory.Config{})
		rl.Limiter = a.limiter
		return rl, nil
	}
	client, err := a.redisClient()
	if err != nil {
		return rl, err
	}
	var lastLog atomic.Int64
	lim, err := redislimit.New(redislimit.Config{Client: client, FailPolicy: a.cfg.FailPolicy(),
		OnError: func(err error) {
			// At most one line every 10 seconds; the metric counts them all.
			now, last := time.Now().Unix(), lastLog.Load()
			if now-last >= 10 && lastLog.CompareAndSwap(last, now) {
				a.log.Warn("rate limits: redis failed; requests are decided by rate_limit_fail",
					"policy", a.cfg.FailPolicy().String(), "err", err)
			}
		}})
	if err != nil {
		return rl, err
	}
	// With rate_limit_fail=open a node serves without Redis, so an outage
	// must not take every node out of the load balancer at once; with
	// closed it refuses requests, and is not ready.
	if a.cfg.FailPolicy() == ratelimit.FailClosed {
		a.health.Add("redis", func(ctx context.Context) error { return client.Ping(ctx).Err() })
	}
	rl.Limiter = lim
	return rl, nil
}

// redisClient returns the one client of redis_url that the rate limiter
// and the cache share, made on first use; App.Close closes it.
func (a *App) redisClient() (*goredis.Client, error) {
	if a.redis != nil {
		return a.redis, nil
	}
	client, err := newRedisClient(a.cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	a.redis = client
	return client, nil
}

// openCache opens the cache the configuration names (see the cache key):
// in this process, or in Redis, shared by every node. An unreachable
// Redis does not fail requests, which read the database meanwhile, so the
// cache is no readiness check.
func (a *App) openCache() error {
	switch a.cfg.CacheBackend() {
	case "memory":
		c, err := memorycache.New(memorycache.Config{MaxBytes: a.cfg.CacheBytes()})
		if err != nil {
			return err
		}
		a.cache = c
	case "redis":
		client, err := a.redisClient()
		if err != nil {
			return err
		}
		c, err := rediscache.New(rediscache.Config{Client: client})
		if err != nil {
			return err
		}
		a.cache = c
	}
	return nil
}

// newRedisClient returns a client of the Redis at url (redis:// or
// rediss://) with short timeouts, unless the URL sets them, and the
// caller's deadlines applied to socket reads and writes. It does not
// connect.
func newRedisClient(url string) (*goredis.Client, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis_url %s: %w", config.RedactURL(url), err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 2 * time.Second
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = time.Second
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = time.Second
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = 2 * time.Second
	}
	opts.ContextTimeoutEnabled = true
	return goredis.NewClient(opts), nil
}

// migrationsApplied is up when every migration file has been applied.
func (a *App) migrationsApplied(ctx context.Context) error {
	n, err := a.recs.Pending(ctx, a.cfg.MigrationsPath())
	if err != nil {
		return telemetry.Unavailable{Reason: "the migrations directory cannot be read"}
	}
	if n > 0 {
		return telemetry.Unavailable{Reason: fmt.Sprintf("%d migrations are not applied; run strata migrate up", n)}
	}
	return nil
}

// Metrics is the registry of the app's metrics, for components added by a
// program that embeds Strata.
func (a *App) Metrics() *prometheus.Registry { return a.metrics }

// Health is the app's readiness report; components add their checks to it.
func (a *App) Health() *telemetry.Health { return a.health }

// Handler is the HTTP handler of the API.
func (a *App) Handler() http.Handler { return a.handler }

// Records is the records service.
func (a *App) Records() *records.Service { return a.recs }

// DB is the database.
func (a *App) DB() *store.DB { return a.db }

// Close waits for emails being sent, writes pending write-back
// increments, stops the rate limiter and the cache, exports the last
// spans and closes the database.
func (a *App) Close() error {
	if a.ident != nil {
		a.ident.Close()
	}
	var errs []error
	if a.recs != nil {
		fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.recs.Close(fctx))
		cancel()
	}
	if a.cache != nil {
		errs = append(errs, a.cache.Close())
	}
	if a.limiter != nil {
		errs = append(errs, a.limiter.Close())
	}
	if a.redis != nil {
		errs = append(errs, a.redis.Close())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(append(errs, a.tracing.Shutdown(ctx), a.db.Close())...)
}

// Serve answers HTTP on ln until ctx is done. Then it drains: /readyz
// fails for the drain delay so load balancers stop sending traffic, the
// listener closes, and in-flight requests get the shutdown timeout to
// finish.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	servers := []*http.Server{a.server(ctx, a.handler)}
	listeners := []net.Listener{ln}
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	if a.cfg.Metrics && a.cfg.MetricsHTTP != "" {
		mln, err := net.Listen("tcp", a.cfg.MetricsHTTP)
		if err != nil {
			return fmt.Errorf("listen for metrics on %s: %w", a.cfg.MetricsHTTP, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler(a.metrics, a.log))
		servers = append(servers, a.server(ctx, mux))
		listeners = append(listeners, mln)
		metricsURL = "http://" + mln.Addr().String() + "/metrics"
	}
	if !a.cfg.Metrics {
		metricsURL = ""
	}
	if a.cfg.PprofHTTP != "" {
		pln, err := net.Listen("tcp", a.cfg.PprofHTTP)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listen for profiles on %s: %w", a.cfg.PprofHTTP, err)
		}
		servers = append(servers, a.server(ctx, telemetry.PprofHandler()))
		listeners = append(listeners, pln)
		a.log.InfoContext(ctx, "serving Go profiles", "url", "http://"+pln.Addr().String()+"/debug/pprof/")
	}
	// An api node relays events and serves realtime; a worker node runs
	// jobs. Either answers /healthz, /readyz and /metrics.
	if a.cfg.HasRole("api") {
		stopEvents, err := a.startEvents(ctx)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		defer stopEvents()
	} else {
		servers[0].Handler = a.opsHandler()
	}
	if a.cfg.HasRole("worker") {
		// The cron schedules are declared now that every kind is
		// registered, by this package's components and by the program
		// that embeds Strata.
		if err := a.scheduleCron(); err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		if err := a.jobs.Start(ctx); err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("start the job workers: %w", err)
		}
		defer func() {
			// Running jobs get the shutdown timeout to finish; the rest go
			// back to the queue for another worker.
			sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
			defer cancel()
			if err := a.jobs.Stop(sctx); err != nil {
				a.log.Warn("job workers stopped before their jobs finished; the jobs go back to the queue", "err", err)
			}
		}()
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go a.pruneLoop(bg)
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	a.announce(ln.Addr().String(), metricsURL)
	select {
	case err := <-errc:
		for _, srv := range servers {
			srv.Close()
		}
		return err
	case <-ctx.Done():
	}
	a.health.Drain()
	if a.cfg.DrainDelay > 0 {
		a.log.Info("draining: readiness fails while load balancers notice", "delay", a.cfg.DrainDelay)
		time.Sleep(a.cfg.DrainDelay)
	}
	// Realtime connections would hold Shutdown until its timeout: end
	// them first, telling clients to reconnect elsewhere.
	if h := a.hub.Swap(nil); h != nil {
		h.Close()
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			errs = append(errs, fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", a.cfg.ShutdownTimeout, err))
		}
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	// Write the increments taken so far while the relay still runs, so
	// their events are published too; Close writes any taken later.
	if err := a.recs.Flush(sctx); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}
	return errors.Join(errs...)
}

// Jobs is the job queue: programs that embed Strata register kinds and
// schedules on it and enqueue jobs, in a transaction of their own or of a
// record change.
func (a *App) Jobs() *jobs.Service { return a.jobs }

// opsHandler serves what a node without the api role answers: health and
// metrics.
func (a *App) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		a.handler.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		a.handler.ServeHTTP(w, r)
	})
	if a.cfg.Metrics && a.cfg.MetricsHTTP == "" {
		mux.Handle("GET /metrics", telemetry.MetricsHandler(a.metrics, a.log))
	}
	return mux
}

// startEvents starts the broker (the embedded NATS server, or a connection
// to the configured cluster) and the outbox relay; stop ends both.
func (a *App) startEvents(ctx context.Context) (stop func(), err error) {
	bc := natsbroker.Config{URL: a.cfg.NATSURL, MaxAge: a.cfg.EventRetention, Logger: a.log}
	if a.cfg.NATSURL == "" {
		bc.Dir, bc.Listen = filepath.Join(a.cfg.Dir, "nats"), a.cfg.NATSListen
	}
	b, err := natsbroker.New(ctx, bc)
	if err != nil {
		return nil, fmt.Errorf("start the broker: %w", err)
	}
	a.broker = b
	a.health.Add("broker", b.Ping)
	// The relay turns the events it publishes into webhook deliveries in
	// the transaction that takes them out of the outbox.
	relay := outbox.NewRelay(outbox.RelayConfig{DB: a.db, Publisher: b, Logger: a.log, Metrics: a.registerer,
		Tracer:   a.tracing.Tracer("strata/outbox"),
		Dispatch: a.webhooks.Dispatch})
	a.relay.Store(relay)
	hub := realtime.New(ctx, realtime.Config{Broker: b, Records: a.recs, Logger: a.log, Metrics: a.registerer})
	a.hub.Store(hub)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { relay.Run(rctx); close(done) }()
	return func() {
		if h := a.hub.Swap(nil); h != nil {
			h.Close()
		}
		cancel()
		<-done
		a.webhooks.Stop()
		a.relay.Store(nil)
		if err := b.Close(); err != nil {
			a.log.Warn("close the broker", "err", err)
		}
	}, nil
}

func (a *App) server(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// announce says where Strata serves: one log line, and a few readable
// lines on the banner writer when there is one.
func (a *App) announce(addr, metricsURL string) {
	base := "http://" + addr
	database := a.cfg.SQLitePath()
	if a.cfg.Engine() == "postgres" {
		database = config.RedactURL(a.cfg.DB)
	}
	tracing := "off"
	if a.tracing.Enabled() {
		tracing = "OTLP"
	}
	a.log.Info("strata is serving", "api", base+"/api/v1", "engine", a.cfg.Engine(), "database", database,
		"metrics", metricsURL, "tracing", tracing)
	if a.banner == nil {
		return
	}
	if metricsURL == "" {
		metricsURL = "off"
	}
	broker := "embedded NATS in " + filepath.Join(a.cfg.Dir, "nats")
	if a.cfg.NATSURL != "" {
		broker = "NATS at " + config.RedactURL(a.cfg.NATSURL)
	}
	fmt.Fprintf(a.banner, `
  Strata is serving on %s
    REST API    %s/api/v1
    Realtime    %s/api/v1/realtime (SSE), /api/v1/realtime/ws (WebSocket)
    OpenAPI     %s/api/v1/openapi.json
    Health      %s/healthz, %s/readyz
    Metrics     %s
    Database    %s, %s
    Events      %s
    Roles       %s
    Tracing     %s
    Data        %s

`, base, base, base, base, base, base, metricsURL, a.cfg.Engine(), database, broker, a.cfg.Roles, tracing, a.cfg.Dir)
}

// ListenAndServe listens on the configured address and serves.
func (a *App) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTP, err)
	}
	return a.Serve(ctx, ln)
}

func (a *App) pruneLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.db.PruneIdempotent(ctx, time.Now()); err != nil && ctx.Err() == nil {
				a.log.Warn("prune idempotency keys", "err", err)
			} else if n > 0 {
				a.log.Debug("pruned idempotency keys", "count", n)
			}
		}
	}
}

// CreateSuperuser creates a superuser, or sets the password of the
// existing one with the email.
func (a *App) CreateSuperuser(ctx context.Context, email, password string) error {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") {
		return fmt.Errorf("superuser email %q is not an email address", email)
	}
	if len(password) < 10 {
		return errors.New("the password must be at least 10 characters")
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return a.db.Write(ctx, func(tx *store.Tx) error {
		return store.PutSuperuser(ctx, tx, &store.Superuser{ID: records.NewID(), Email: email, PasswordHash: hash, Created: now, Updated: now})
	})
}
