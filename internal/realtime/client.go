package realtime

import (
	"context"
	"strings"
	"sync"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/records"
)

// Why the server ends a connection.
const (
	reasonSlow     = "slow_consumer: the client did not read its events fast enough; reconnect with the last event id to resume"
	reasonShutdown = "shutdown: the server is stopping; reconnect with the last event id to resume"
	reasonResume   = "resume_failed: the missed events could not be replayed; reload the data and reconnect"
)

// client is one connection: what it watches and the events queued for it.
type client struct {
	hub    *Hub
	queue  chan *change
	closed chan struct{}

	mu        sync.Mutex
	watches   []*records.Watch
	replaying bool      // events for the client wait in held until the replay ends
	held      []*change // live events that arrived during a replay
	why       string
	closeOnce sync.Once
}

func newClient(h *Hub) *client {
	return &client{hub: h, queue: make(chan *change, h.cfg.Buffer), closed: make(chan struct{})}
}

// fail disconnects the client with reason.
func (c *client) fail(reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.why = reason
		c.mu.Unlock()
		close(c.closed)
		c.hub.dropped.WithLabelValues(reason[:strings.IndexByte(reason, ':')]).Inc()
	})
}

func (c *client) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

// wants reports whether one of the client's watches matches the event.
func (c *client) wants(ctx context.Context, ev *decoded) bool {
	c.mu.Lock()
	ws := c.watches
	c.mu.Unlock()
	for _, w := range ws {
		if w.Matches(ctx, ev.rec) {
			return true
		}
	}
	return false
}

// offer queues a live event the client may see, without waiting: a client
// whose queue is full is disconnected.
func (c *client) offer(ctx context.Context, ev *decoded) {
	if !c.wants(ctx, ev) {
		return
	}
	ch := ev.render()
	if ch == nil {
		return
	}
	c.mu.Lock()
	if c.replaying {
		if len(c.held) >= cap(c.queue) {
			c.mu.Unlock()
			c.fail(reasonSlow)
			return
		}
		c.held = append(c.held, ch)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	select {
	case c.queue <- ch:
		c.hub.sent.Inc()
	default:
		c.fail(reasonSlow)
	}
}

// deliver queues a replayed event, waiting for room: a replay goes at the
// pace of the client.
func (c *client) deliver(ctx context.Context, ev *decoded) error {
	if !c.wants(ctx, ev) {
		return nil
	}
	ch := ev.render()
	if ch == nil {
		return nil
	}
	select {
	case c.queue <- ch:
		c.hub.sent.Inc()
		return nil
	case <-c.closed:
		return apperr.New(apperr.Unavailable, "%s", c.reason())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endReplay queues the live events held during the replay and lets new
// ones through.
func (c *client) endReplay() {
	c.mu.Lock()
	held := c.held
	c.held, c.replaying = nil, false
	c.mu.Unlock()
	for _, ch := range held {
		select {
		case c.queue <- ch:
			c.hub.sent.Inc()
		default:
			c.fail(reasonSlow)
			return
		}
	}
}

// watch sets what the client watches. With last set, the events after
// that position up to now are replayed first; live events wait meanwhile.
func (h *Hub) watch(ctx context.Context, c *client, ws []*records.Watch, last uint64) {
	h.mu.Lock()
	c.mu.Lock()
	c.watches = ws
	to := h.lastSeq.Load()
	replay := last > 0 && last < to
	if replay {
		c.replaying = true
	}
	c.mu.Unlock()
	h.mu.Unlock()
	if !replay {
		return
	}
	go func() {
		if err := h.replay(ctx, c, last, to); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("realtime: replay failed", "from", last, "to", to, "err", err)
				c.fail(reasonResume)
			}
			return
		}
		c.endReplay()
	}()
}

// watches prepares the watches of subscribe values ("posts" or
// "posts/RECORD_ID") and a filter for caller.
func (h *Hub) watches(ctx context.Context, caller *records.Caller, subscribe []string, filter string) ([]*records.Watch, error) {
	targets, err := ParseSubscriptions(subscribe)
	if err != nil {
		return nil, err
	}
	ws := make([]*records.Watch, 0, len(targets))
	for _, t := range targets {
		w, err := h.recs.Watch(ctx, caller, t.Collection, t.RecordID, filter)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// Target is one subscription: a collection, or one record of it.
type Target struct {
	Collection string
	RecordID   string
}

// maxSubscriptions bounds the subscriptions of one connection.
const maxSubscriptions = 100

// ParseSubscriptions reads subscribe values: "COLLECTION" or
// "COLLECTION/RECORD_ID", each possibly a comma-separated list.
func ParseSubscriptions(values []string) ([]Target, error) {
	var out []Target
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			coll, id, hasID := strings.Cut(s, "/")
			if coll == "" || strings.ContainsAny(coll, " \t/") || hasID && (id == "" || strings.Contains(id, "/")) {
				return nil, apperr.New(apperr.Invalid, "subscription %q is not COLLECTION or COLLECTION/RECORD_ID", s)
			}
			out = append(out, Target{Collection: coll, RecordID: id})
		}
	}
	if len(out) == 0 {
		return nil, apperr.New(apperr.Invalid, "nothing to subscribe to: give subscribe=COLLECTION or subscribe=COLLECTION/RECORD_ID")
	}
	if len(out) > maxSubscriptions {
		return nil, apperr.New(apperr.Invalid, "%d subscriptions on one connection; at most %d", len(out), maxSubscriptions)
	}
	return out, nil
}
