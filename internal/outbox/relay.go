package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/broker"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Publisher is what the relay needs of a broker.
type Publisher interface {
	PublishAll(ctx context.Context, msgs []broker.Message) []broker.Result
}

// RelayConfig configures a Relay. Zero durations and sizes take the
// defaults in brackets.
type RelayConfig struct {
	DB        *store.DB
	Publisher Publisher
	Logger    *slog.Logger
	// Metrics receives the relay's metrics; nil exports none.
	Metrics prometheus.Registerer
	// Node names this process among those sharing the database; one node
	// at a time holds the relay's lease. [a random id]
	Node string
	// Poll is how often the relay looks for events written by other
	// nodes. Events written on this node wake it at once. [100ms]
	Poll time.Duration
	// Batch is the most events read at once. [256]
	Batch int
	// PublishTimeout bounds the wait for the broker's acknowledgements of
	// the events sent at once. [5s]
	PublishTimeout time.Duration
	// LeaseTTL is how long the relay's lease lasts without renewal; after a
	// crash another node takes over within it. [10s]
	LeaseTTL time.Duration
	// MaxBackoff caps the wait between retries while the broker is away. [10s]
	MaxBackoff time.Duration
	// Tracer, when set, gives each publish a producer span in the trace of
	// the change that wrote the event.
	Tracer trace.Tracer
	// Dispatch, when set, is given the events the broker has just
	// acknowledged, in the order they were written, before they leave the
	// outbox. The write it returns (nil for none) runs in the transaction
	// that deletes them, so its work is done once for each event: never
	// for an event left in the outbox, which is published and dispatched
	// again. An error leaves the events there, and the relay retries
	// after a backoff.
	Dispatch Dispatch
}

// Dispatch prepares the work of published events; see RelayConfig.Dispatch.
type Dispatch func(ctx context.Context, events []broker.Message) (write func(*store.Tx) error, err error)

const leaseName = "outbox-relay"

// Relay publishes the outbox to the broker. Several nodes may run one
// each: a lease lets one publish at a time, so events go out once and in
// order, and another takes over when it stops.
type Relay struct {
	cfg  RelayConfig
	log  *slog.Logger
	kick chan struct{}

	published prometheus.Counter
	failures  prometheus.Counter
	delay     prometheus.Observer
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) *Relay {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Node == "" {
		cfg.Node = telemetry.NodeID()
	}
	setDefault(&cfg.Poll, 100*time.Millisecond)
	setDefault(&cfg.PublishTimeout, 5*time.Second)
	setDefault(&cfg.LeaseTTL, 10*time.Second)
	setDefault(&cfg.MaxBackoff, 10*time.Second)
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	f := promauto.With(cfg.Metrics)
	r := &Relay{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1),
		published: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_outbox_events_published_total",
			Help: "Events the relay published and the broker acknowledged.",
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_outbox_publish_failures_total",
			Help: "Publishes of outbox events that failed and will be retried.",
		}),
		delay: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_outbox_publish_delay_seconds",
			Help:    "Time from an event's commit to the broker's acknowledgement.",
			Buckets: telemetry.DurationBuckets,
		}),
	}
	return r
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Notify wakes the relay: an event was just committed on this node.
func (r *Relay) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes events until ctx ends, then gives up the lease.
func (r *Relay) Run(ctx context.Context) {
	var (
		leaseUntil time.Time
		backoff    time.Duration
	)
	defer func() {
		if !leaseUntil.IsZero() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			_ = r.cfg.DB.ReleaseLease(rctx, leaseName, r.cfg.Node)
		}
	}()
	for ctx.Err() == nil {
		now := time.Now()
		if now.After(leaseUntil.Add(-r.cfg.LeaseTTL / 2)) {
			ok, err := r.cfg.DB.AcquireLease(ctx, leaseName, r.cfg.Node, r.cfg.LeaseTTL, now)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("outbox relay: lease", "err", err)
			}
			if !ok {
				leaseUntil = time.Time{}
				r.sleep(ctx, r.cfg.LeaseTTL/4, false)
				continue
			}
			leaseUntil = now.Add(r.cfg.LeaseTTL)
		}
		rows, err := r.cfg.DB.PendingOutbox(ctx, r.cfg.Batch)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("outbox relay: read", "err", err)
				r.sleep(ctx, time.Second, false)
			}
			continue
		}
		if len(rows) == 0 {
			r.sleep(ctx, r.cfg.Poll, true)
			continue
		}
		sent, err := r.publish(ctx, rows)
		if len(sent) > 0 {
			// The broker has the events: record it even if ctx ended.
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			merr := r.retire(mctx, sent)
			cancel()
			if merr != nil && err == nil {
				err = fmt.Errorf("delete sent events (they will be published again): %w", merr)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), r.cfg.MaxBackoff)
			wait := backoff/2 + rand.N(backoff/2+1)
			r.log.Warn("outbox relay: failed; retrying", "err", err, "published", len(sent), "pending", len(rows)-len(sent), "retry_in", wait)
			r.sleep(ctx, wait, false)
			continue
		}
		backoff = 0
		if len(rows) < r.cfg.Batch {
			r.sleep(ctx, r.cfg.Poll, true)
		}
	}
}

// sleep waits d, or less when wake is set and the relay is notified.
func (r *Relay) sleep(ctx context.Context, d time.Duration, wake bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	var kick <-chan struct{}
	if wake {
		kick = r.kick
	}
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-kick:
	}
}

// retire deletes the published events from the outbox, with the work Dispatch
// prepares for them in the same transaction.
func (r *Relay) retire(ctx context.Context, sent []published) error {
	slices.SortFunc(sent, func(a, b published) int { return cmp.Compare(a.seq, b.seq) })
	seqs := make([]int64, len(sent))
	for i, p := range sent {
		seqs[i] = p.seq
	}
	var write func(*store.Tx) error
	if r.cfg.Dispatch != nil {
		msgs := make([]broker.Message, 0, len(sent))
		for _, p := range sent {
			if p.msg != nil {
				msgs = append(msgs, *p.msg)
			}
		}
		var err error
		if write, err = r.cfg.Dispatch(ctx, msgs); err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
	}
	return r.cfg.DB.OutboxSent(ctx, seqs, write)
}

// published is an event the broker acknowledged; msg is nil for one it
// refused for good, which leaves the outbox but is not dispatched.
type published struct {
	seq int64
	msg *broker.Message
}

// publish sends rows in rounds: a round sends the next event of every key
// whose events so far have all gone, without waiting for one before the
// next (Publisher.PublishAll), so that the events of a key go one after
// another and the events of different keys together. It returns the
// events the broker acknowledged; when one fails, the later events of its
// key are not sent, so order holds.
func (r *Relay) publish(ctx context.Context, rows []*store.OutboxRow) ([]published, error) {
	var keys []string
	byKey := make(map[string][]*store.OutboxRow)
	for _, row := range rows {
		if _, ok := byKey[row.Key]; !ok {
			keys = append(keys, row.Key)
		}
		byKey[row.Key] = append(byKey[row.Key], row)
	}
	sent := make([]published, 0, len(rows))
	var firstErr error
	for len(keys) > 0 {
		round := make([]*store.OutboxRow, len(keys))
		for i, k := range keys {
			round[i], byKey[k] = byKey[k][0], byKey[k][1:]
		}
		var next []string
		for i, o := range r.publishRound(ctx, round) {
			if o.err != nil {
				firstErr = cmp.Or(firstErr, o.err)
				continue
			}
			sent = append(sent, published{round[i].Seq, o.msg})
			if len(byKey[keys[i]]) > 0 {
				next = append(next, keys[i])
			}
		}
		keys = next
	}
	return sent, firstErr
}

// outcome is what became of one event of a round: its message once the
// broker has it, nil and no error when the broker refused it for good.
type outcome struct {
	msg *broker.Message
	err error
}

// publishRound publishes rows at once.
func (r *Relay) publishRound(ctx context.Context, rows []*store.OutboxRow) []outcome {
	msgs := make([]broker.Message, len(rows))
	for i, row := range rows {
		msgs[i] = broker.Message{ID: row.ID, Topic: row.Topic, Key: row.Key, Data: row.Data}
		if row.Headers != "" && row.Headers != "{}" {
			if err := json.Unmarshal([]byte(row.Headers), &msgs[i].Header); err != nil {
				r.log.Warn("outbox relay: event headers unreadable; sending without them", "event", row.ID, "err", err)
				msgs[i].Header = nil
			}
		}
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	spans := make([]trace.Span, len(rows))
	if r.cfg.Tracer != nil {
		for i, msg := range msgs {
			if msg.Header["traceparent"] == "" {
				continue
			}
			// The write's trace continues with its publish.
			sctx := telemetry.Propagator.Extract(pctx, propagation.MapCarrier(msg.Header))
			_, spans[i] = r.cfg.Tracer.Start(sctx, "publish "+msg.Topic, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", msg.Topic),
					attribute.String("messaging.message.id", msg.ID)))
		}
	}
	results := r.cfg.Publisher.PublishAll(pctx, msgs)
	out := make([]outcome, len(rows))
	for i, res := range results {
		if span := spans[i]; span != nil {
			if res.Err != nil {
				span.SetStatus(codes.Error, res.Err.Error())
			}
			span.End()
		}
		switch {
		case res.Err == nil:
			r.published.Inc()
			r.delay.Observe(time.Since(rows[i].Created).Seconds())
			out[i].msg = &msgs[i]
		case errors.Is(res.Err, broker.ErrInvalid):
			// The broker will never take it; keeping it would stop its
			// record's later events forever.
			r.failures.Inc()
			r.log.Error("outbox relay: the broker refuses an event; dropping it", "event", rows[i].ID, "topic", rows[i].Topic, "err", res.Err)
		default:
			r.failures.Inc()
			out[i].err = res.Err
		}
	}
	return out
}

// RegisterBacklog exports the events waiting in db's outbox and the age of
// the oldest, read at each scrape; it needs no relay running.
func RegisterBacklog(reg prometheus.Registerer, db *store.DB) {
	if reg != nil {
		reg.MustRegister(backlogCollector{db})
	}
}

// backlogCollector reports the events waiting, read at each scrape.
type backlogCollector struct{ db *store.DB }

var (
	backlogDesc = prometheus.NewDesc("strata_outbox_backlog_events",
		"Events committed but not yet acknowledged by the broker.", nil, nil)
	lagDesc = prometheus.NewDesc("strata_outbox_lag_seconds",
		"Age of the oldest event not yet acknowledged by the broker; 0 when none waits.", nil, nil)
)

func (b backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- lagDesc
}

func (b backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := b.db.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	lag := 0.0
	if n > 0 && !oldest.IsZero() {
		lag = max(time.Since(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag)
}
