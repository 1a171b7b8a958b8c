// Package realtime pushes record changes to subscribed clients over
// Server-Sent Events and WebSocket.
//
// Every node runs one Hub, which, while it has clients, follows all
// record events on the broker (a fan-out subscription, so each node sees
// every change wherever it was made) and hands each to the local clients
// whose subscriptions it matches and whose view rule, checked with the
// client's identity, lets them see it. A node without clients does not
// follow the events at all: a write then costs nothing here. Events are identified by their position in the broker's
// stream; a client that reconnects with the last position it saw gets the
// events it missed, replayed from the stream within its retention.
//
// A client that does not keep up is disconnected with a reason rather
// than buffered without bound, and idle connections get heartbeats so
// proxies keep them open.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/broker"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
)

// Config configures a Hub. Zero values take the defaults in brackets.
type Config struct {
	Broker  broker.Broker
	Records *records.Service
	Logger  *slog.Logger
	// Metrics receives the hub's metrics; nil exports none.
	Metrics prometheus.Registerer
	// Buffer is how many events a client may fall behind before it is
	// disconnected. [256]
	Buffer int
	// Heartbeat is the interval of keep-alive messages on idle
	// connections. [15s]
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a client. [10s]
	WriteTimeout time.Duration
	// Idle is how long the hub goes on following the events after its
	// last client left, so that clients reconnecting in a loop do not
	// start and stop the subscription each time. [1m]
	Idle time.Duration
}

// Hub dispatches record events to the clients of this node.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	recs    *records.Service
	mu      sync.RWMutex // held for writing to add or remove clients
	clients map[*client]struct{}
	lastSeq atomic.Uint64 // the stream position of the last event dispatched
	seen    *recent       // ids of recent events, to drop repeats

	// follow guards the subscription, which runs only while the hub has
	// clients (and for Idle after); registering a client holds it too.
	follow    sync.Mutex
	life      context.Context // the hub's; ends with Close
	end       context.CancelFunc
	closed    bool
	sub       broker.Subscriber // nil while the hub follows no events
	subCancel context.CancelFunc
	idle      *time.Timer // ends the subscription after the last client left

	connections prometheus.Gauge
	sent        prometheus.Counter
	dropped     *prometheus.CounterVec
}

// New returns a hub; it subscribes to the record events when its first
// client connects. Close ends it.
func New(ctx context.Context, cfg Config) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Idle <= 0 {
		cfg.Idle = time.Minute
	}
	f := promauto.With(cfg.Metrics)
	h := &Hub{cfg: cfg, log: cfg.Logger, recs: cfg.Records, clients: map[*client]struct{}{}, seen: newRecent(4096),
		connections: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_realtime_connections",
			Help: "Realtime clients connected to this node.",
		}),
		sent: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_realtime_events_sent_total",
			Help: "Events queued to realtime clients.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_realtime_disconnects_total",
			Help: "Realtime clients disconnected by the server, by reason.",
		}, []string{"reason"}),
	}
	h.life, h.end = context.WithCancel(context.WithoutCancel(ctx))
	return h
}

// Close ends the subscription and disconnects every client, telling them
// why. It is safe to call more than once.
func (h *Hub) Close() error {
	h.follow.Lock()
	defer h.follow.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.end()
	err := h.unfollow()
	h.mu.Lock()
	for c := range h.clients {
		c.fail(reasonShutdown)
	}
	h.mu.Unlock()
	return err
}

// followEvents subscribes to the events published from now on; the
// position before the first of them becomes lastSeq, from which a
// reconnecting client's missed events are replayed. h.follow is held.
func (h *Hub) followEvents(ctx context.Context) error {
	last, err := h.cfg.Broker.Last(ctx)
	if err != nil {
		return fmt.Errorf("realtime: stream position: %w", err)
	}
	h.lastSeq.Store(last)
	sctx, cancel := context.WithCancel(h.life)
	sub, err := h.cfg.Broker.Subscribe(sctx, broker.Subscription{Topics: []string{outbox.TopicPrefix + ">"}, From: broker.AtSeq(last + 1)}, h.handle)
	if err != nil {
		cancel()
		return fmt.Errorf("realtime: subscribe to record events: %w", err)
	}
	h.sub, h.subCancel = sub, cancel
	h.log.Debug("realtime: following record events", "from", last+1)
	return nil
}

// unfollow ends the subscription, if any. h.follow is held.
func (h *Hub) unfollow() error {
	if h.idle != nil {
		h.idle.Stop()
		h.idle = nil
	}
	if h.sub == nil {
		return nil
	}
	h.subCancel()
	err := h.sub.Close()
	h.sub, h.subCancel = nil, nil
	h.log.Debug("realtime: stopped following record events", "last", h.lastSeq.Load())
	return err
}

// idleStop ends the subscription if no client came back since the timer
// that calls it was set.
func (h *Hub) idleStop() {
	h.follow.Lock()
	defer h.follow.Unlock()
	h.mu.RLock()
	n := len(h.clients)
	h.mu.RUnlock()
	if n == 0 && !h.closed {
		if err := h.unfollow(); err != nil {
			h.log.Warn("realtime: stop following record events", "err", err)
		}
	}
}

// change is one event as clients receive it, rendered once for all.
type change struct {
	Seq        uint64          `json:"-"`
	Op         string          `json:"op"`
	Collection string          `json:"collection"`
	Record     json.RawMessage `json:"record"`
}

// decoded is an event with its record read, ready to be matched.
type decoded struct {
	seq    uint64
	ev     outbox.Event
	rec    *schema.Record
	once   sync.Once
	change *change
}

func (d *decoded) render() *change {
	d.once.Do(func() {
		b, err := d.rec.AppendJSON(nil, nil)
		if err != nil {
			return
		}
		d.change = &change{Seq: d.seq, Op: d.ev.Op, Collection: d.ev.Collection, Record: b}
	})
	return d.change
}

// decode reads a delivery; nil means there is nothing to dispatch.
func (h *Hub) decode(ctx context.Context, d broker.Delivery) *decoded {
	var ev outbox.Event
	if err := json.Unmarshal(d.Data, &ev); err != nil {
		h.log.Warn("realtime: unreadable event", "seq", d.Seq, "err", err)
		return nil
	}
	rec, err := h.recs.EventRecord(ctx, ev.Collection, ev.Record)
	if err != nil {
		// The collection is gone, or the record no longer reads.
		h.log.Debug("realtime: event of an unknown record", "event", ev.ID, "err", err)
		return nil
	}
	return &decoded{seq: d.Seq, ev: ev, rec: rec}
}

// handle dispatches one event to every client it concerns. The broker
// calls it for one event at a time, in stream order.
func (h *Hub) handle(ctx context.Context, d broker.Delivery) error {
	defer h.lastSeq.Store(d.Seq)
	if !h.seen.add(d.ID) {
		return nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	// With no one connected there is no one to decode the event for; a
	// client that connects later replays what it missed from the stream.
	if len(h.clients) == 0 {
		return nil
	}
	ev := h.decode(ctx, d)
	if ev == nil {
		return nil
	}
	for c := range h.clients {
		c.offer(ctx, ev)
	}
	return nil
}

// register adds c, subscribing to the events if the hub follows none;
// the returned position is the last event dispatched before c was added,
// from which a resume must replay. An error means the broker could not
// be reached, and c was not added.
func (h *Hub) register(ctx context.Context, c *client) (uint64, error) {
	h.follow.Lock()
	defer h.follow.Unlock()
	if h.closed {
		return 0, apperr.New(apperr.Unavailable, "realtime is shutting down")
	}
	if h.idle != nil {
		h.idle.Stop()
		h.idle = nil
	}
	if h.sub == nil {
		if err := h.followEvents(ctx); err != nil {
			h.log.Warn("realtime: cannot follow record events", "err", err)
			return 0, apperr.Wrap(apperr.Unavailable, err, "realtime events are unavailable; retry later")
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	h.connections.Inc()
	return h.lastSeq.Load(), nil
}

// unregister removes c; the last client to leave sets the idle timer.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	_, ok := h.clients[c]
	delete(h.clients, c)
	n := len(h.clients)
	h.mu.Unlock()
	if !ok {
		return
	}
	h.connections.Dec()
	if n > 0 {
		return
	}
	h.follow.Lock()
	defer h.follow.Unlock()
	if h.sub != nil && h.idle == nil && !h.closed {
		h.idle = time.AfterFunc(h.cfg.Idle, h.idleStop)
	}
}

// replay sends c the events after position from up to position to, from
// the broker's stream.
func (h *Hub) replay(ctx context.Context, c *client, from, to uint64) error {
	if to <= from {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var once sync.Once
	sub, err := h.cfg.Broker.Subscribe(ctx, broker.Subscription{Topics: []string{outbox.TopicPrefix + ">"}, From: broker.AtSeq(from + 1)},
		func(ctx context.Context, d broker.Delivery) error {
			if d.Seq > to {
				once.Do(func() { close(done) })
				return nil
			}
			if ev := h.decode(ctx, d); ev != nil {
				if err := c.deliver(ctx, ev); err != nil {
					return nil
				}
			}
			if d.Seq == to {
				once.Do(func() { close(done) })
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("realtime: replay from %d: %w", from, err)
	}
	defer sub.Close()
	select {
	case <-done:
		return nil
	case <-c.closed:
		return errors.New(c.reason())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ParsePosition reads a Last-Event-ID: a stream position.
func ParsePosition(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("last event id %q is not an event id from this server", s)
	}
	return n, nil
}

// recent remembers the last n event ids.
type recent struct {
	mu   sync.Mutex
	ring []string
	next int
	set  map[string]struct{}
}

func newRecent(n int) *recent {
	return &recent{ring: make([]string, n), set: make(map[string]struct{}, n)}
}

// add reports whether id is new, and remembers it.
func (r *recent) add(id string) bool {
	if id == "" {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[id]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % len(r.ring)
	r.set[id] = struct{}{}
	return true
}
