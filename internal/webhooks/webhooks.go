// Package webhooks delivers record events to HTTP endpoints that
// superusers register: each endpoint names the collections and operations
// it wants (with an optional filter), and receives every matching change
// as a signed POST (Standard Webhooks).
//
// The path of an event: the outbox relay publishes it to the broker and,
// in the transaction that deletes it from the outbox, Dispatch enqueues one
// "webhook.deliver" job for each enabled endpoint it matches, keyed by
// endpoint and event; a worker sends the request, logs the attempt in
// _webhook_deliveries and fails the job on anything but a 2xx, so the
// queue retries it with its backoff. An endpoint whose attempts keep
// failing (DisableAfter in a row) or that answers 410 Gone is disabled,
// with an audit entry.
//
// Delivery is at least once: a receiver may see an event twice and should
// de-duplicate by the webhook-id header.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/store"
)

// Job kinds the service registers on the job queue.
const (
	// JobKind delivers one event to one endpoint.
	JobKind = "webhook.deliver"
	// pruneKind deletes old delivery logs, hourly.
	pruneKind = "webhook.prune"
)

// Config configures a Service. Zero values take the defaults named beside
// them.
type Config struct {
	DB      *store.DB
	Records *records.Service
	Jobs    *jobs.Service
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// Tracer traces deliveries; nil traces nothing, but the traceparent of
	// each event is still forwarded to its endpoints.
	Tracer trace.Tracer
	// AllowHosts lists hosts webhooks may reach even though they are
	// private: IP addresses, CIDRs or host names (see NewGuard).
	AllowHosts []string
	// Client sends the deliveries; nil means a client whose transport
	// enforces AllowHosts at dial time and that follows no redirects. A
	// client given here is used as it is, redirects aside: the address
	// checks are then its transport's business.
	Client *http.Client
	// DisableAfter is how many failed delivery attempts in a row disable an
	// endpoint: 20.
	DisableAfter int
	// Timeout bounds one delivery request: 10s.
	Timeout time.Duration
	// Queue is the job queue deliveries go to: jobs.DefaultQueue. A queue
	// of their own keeps slow receivers from holding up other jobs; worker
	// nodes must then work it.
	Queue string
	// MaxAttempts caps the attempts of one delivery; 0 means the job
	// queue's default.
	MaxAttempts int
	// Retention is how long delivery logs are kept: 7 days.
	Retention time.Duration
}

// Errors of the service, wrapped in *apperr.Error values; test with
// errors.Is.
var (
	ErrNotFound = errors.New("webhook not found")
)

// Service manages webhook endpoints, turns record events into delivery
// jobs and delivers them.
type Service struct {
	cfg    Config
	db     *store.DB
	recs   *records.Service
	jobs   *jobs.Service
	log    *slog.Logger
	m      *metrics
	guard  *Guard
	client *http.Client
	tracer trace.Tracer
	// watches caches the compiled filters of endpoints.
	watches watchCache
}

// New creates the service's tables when missing and registers its job
// kinds on cfg.Jobs; call it before the job service starts.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.DB == nil:
		return nil, errors.New("webhooks: no database")
	case cfg.Records == nil:
		return nil, errors.New("webhooks: no records service")
	case cfg.Jobs == nil:
		return nil, errors.New("webhooks: no job service")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Queue == "" {
		cfg.Queue = jobs.DefaultQueue
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("strata/webhooks")
	}
	g, err := NewGuard(cfg.AllowHosts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := migrate(ctx, cfg.DB); err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, db: cfg.DB, recs: cfg.Records, jobs: cfg.Jobs,
		log:    cfg.Logger.With("component", "webhooks"),
		m:      newMetrics(cfg.Metrics),
		guard:  g,
		tracer: cfg.Tracer,
	}
	s.client = newClient(cfg.Client, g, cfg.Timeout)
	cfg.Jobs.Register(JobKind, jobs.Handle(s.deliverJob))
	cfg.Jobs.Register(pruneKind, func(ctx context.Context, _ *jobs.Job) error { return s.prune(ctx) })
	if err := cfg.Jobs.Schedule(pruneKind, "@hourly", pruneKind, nil); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return s, nil
}

// newClient returns the delivery client: base (or a guarded one) that
// follows no redirects. A receiver that moved must be registered again
// under its new URL; following a Location would send the signed payload
// somewhere nobody registered, and a redirect to a private address is the
// oldest way around an address check.
func newClient(base *http.Client, g *Guard, timeout time.Duration) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	} else {
		c.Transport = &http.Transport{
			Proxy:                 nil, // never an environment proxy: the checked address is the one reached
			DialContext:           g.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
		}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Guard returns the address guard of the service's deliveries.
func (s *Service) Guard() *Guard { return s.guard }

// Stop closes the delivery client's idle connections. Jobs already
// enqueued are delivered by the job workers.
func (s *Service) Stop() {
	s.client.CloseIdleConnections()
}

func notFound(id string) error {
	return &apperr.Error{Kind: apperr.NotFound, Msg: fmt.Sprintf("webhook %q not found", id), Err: ErrNotFound}
}

func invalid(format string, args ...any) error {
	return apperr.New(apperr.Invalid, format, args...)
}
