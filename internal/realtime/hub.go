// Package realtime pushes record changes to subscribed clients over
// Server-Sent Events and WebSocket.
//
// Every node runs one Hub, which follows all record events on the broker
// (a fan-out subscription, so each node sees every change wherever it was
// made) and hands each to the local clients whose subscriptions it
// matches and whose view rule, checked with the client's identity, lets
// them see it. Events are identified by their position in the broker's
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
	sub     broker.Subscriber
	cancel  context.CancelFunc
	close   sync.Once

	connections prometheus.Gauge
	sent        prometheus.Counter
	dropped     *prometheus.CounterVec
}

// New subscribes to the record events published from now on and returns
// the hub. Close ends it.
func New(ctx context.Context, cfg Config) (*Hub, error) {
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
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sub, err := cfg.Broker.Subscribe(sctx, broker.Subscription{Topics: []string{outbox.TopicPrefix + ">"}}, h.handle)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("realtime: subscribe to record events: %w", err)
	}
	h.sub, h.cancel = sub, cancel
	return h, nil
}

// Close ends the subscription and disconnects every client, telling them
// why. It is safe to call more than once.
func (h *Hub) Close() error {
	var err error
	h.close.Do(func() {
		h.cancel()
		err = h.sub.Close()
		h.mu.Lock()
		for c := range h.clients {
			c.fail(reasonShutdown)
		}
		h.mu.Unlock()
	})
	return err
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

// register adds c; the returned position is the last event dispatched
// before c was added, from which a resume must replay.
func (h *Hub) register(c *client) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	h.connections.Inc()
	return h.lastSeq.Load()
}

func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.connections.Dec()
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
