package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/broker"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Event types of deliveries.
const (
	TypeCreated = "record.created"
	TypeUpdated = "record.updated"
	TypeDeleted = "record.deleted"
	TypeTest    = "webhook.test"
)

var eventTypes = map[string]string{outbox.OpCreate: TypeCreated, outbox.OpUpdate: TypeUpdated, outbox.OpDelete: TypeDeleted}

// Payload is the body of a delivery.
type Payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// RecordData is the data of a record event's payload: the record as the
// API shows it to a superuser (hidden fields left out).
type RecordData struct {
	Collection string          `json:"collection"`
	Record     json.RawMessage `json:"record"`
}

// deliverArgs are the arguments of a delivery job.
type deliverArgs struct {
	Webhook string          `json:"webhook_id"`
	Event   string          `json:"event_id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	// Trace holds the event's trace context headers (traceparent,
	// tracestate), forwarded to the endpoint.
	Trace map[string]string `json:"trace,omitempty"`
}

// uniqueKey keeps one pending delivery job per endpoint and event.
func uniqueKey(webhook, event string) string { return "webhook:" + webhook + ":" + event }

// dispatch handles one record event from the broker: it enqueues a
// delivery job for every enabled endpoint the event matches, all in one
// transaction. An error asks the broker to deliver the event again; the
// jobs' unique keys keep that from duplicating deliveries.
func (s *Service) dispatch(ctx context.Context, d broker.Delivery) error {
	// Most events meet no endpoint: look before decoding.
	endpoints, err := listEndpoints(store.ReadPrimary(ctx), s.db.Reader(), true)
	if err != nil {
		return err
	}
	if len(endpoints) == 0 {
		return nil
	}
	var ev outbox.Event
	if err := json.Unmarshal(d.Data, &ev); err != nil || ev.ID == "" {
		s.log.Warn("webhooks: unreadable event; skipped", "seq", d.Seq, "err", err)
		return nil
	}
	typ, ok := eventTypes[ev.Op]
	if !ok {
		s.log.Warn("webhooks: event of an unknown operation; skipped", "event", ev.ID, "op", ev.Op)
		return nil
	}
	rec, err := s.recs.EventRecord(ctx, ev.Collection, ev.Record)
	if err != nil {
		if apperr.KindOf(err) == apperr.NotFound {
			return nil // the collection is gone
		}
		s.log.Warn("webhooks: event record unreadable; skipped", "event", ev.ID, "collection", ev.Collection, "err", err)
		return nil
	}
	var targets []*Endpoint
	for _, e := range endpoints {
		if s.matches(ctx, e, ev.Op, rec) {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	recJSON, err := rec.AppendJSON(nil, nil)
	if err != nil {
		s.log.Warn("webhooks: event record does not render; skipped", "event", ev.ID, "err", err)
		return nil
	}
	payload, err := json.Marshal(Payload{Type: typ, Timestamp: ev.Time.UTC().Format(time.RFC3339Nano),
		Data: RecordData{Collection: ev.Collection, Record: recJSON}})
	if err != nil {
		return err
	}
	var trace map[string]string
	for _, h := range []string{"traceparent", "tracestate"} {
		if v := d.Header[h]; v != "" {
			if trace == nil {
				trace = map[string]string{}
			}
			trace[h] = v
		}
	}
	enqueued := 0
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		enqueued = 0
		for _, e := range targets {
			args := deliverArgs{Webhook: e.ID, Event: ev.ID, Type: typ, Payload: payload, Trace: trace}
			_, err := s.jobs.Enqueue(ctx, tx, JobKind, args, jobs.EnqueueOptions{
				Queue: s.cfg.Queue, MaxAttempts: s.cfg.MaxAttempts, Timeout: s.jobTimeout(),
				UniqueKey: uniqueKey(e.ID, ev.ID), Tags: []string{"webhook:" + e.ID},
			})
			if errors.Is(err, jobs.ErrDuplicate) {
				continue // a redelivered event whose job is still pending
			}
			if err != nil {
				return err
			}
			enqueued++
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.m.enqueued.Add(float64(enqueued))
	return nil
}

// jobTimeout bounds a delivery job: the request and the writes around it.
func (s *Service) jobTimeout() time.Duration { return s.cfg.Timeout + 30*time.Second }

// matches reports whether an event of op on rec is one e asked for.
func (s *Service) matches(ctx context.Context, e *Endpoint, op string, rec *schema.Record) bool {
	for _, f := range e.Events {
		if f.Collection != Any && f.Collection != rec.Collection.Name {
			continue
		}
		if !slices.Contains(f.Ops, Any) && !slices.Contains(f.Ops, op) {
			continue
		}
		if f.Filter == "" {
			return true
		}
		w := s.watches.get(ctx, s.recs, rec.Collection, f.Filter)
		if w != nil && w.Matches(ctx, rec) {
			return true
		}
	}
	return false
}

// watchCache holds compiled endpoint filters by collection definition and
// filter text. A schema change publishes new collection definitions, so
// a filter is compiled again for the new one.
type watchCache struct {
	mu sync.Mutex
	m  map[watchKey]*records.Watch
}

type watchKey struct {
	c      *schema.Collection
	filter string
}

// maxWatches bounds the cache; it is emptied when full.
const maxWatches = 4096

// get returns the compiled filter, or nil when it no longer compiles
// against the collection (its fields changed): such a filter matches
// nothing.
func (wc *watchCache) get(ctx context.Context, recs *records.Service, c *schema.Collection, filter string) *records.Watch {
	k := watchKey{c, filter}
	wc.mu.Lock()
	w, ok := wc.m[k]
	wc.mu.Unlock()
	if ok {
		return w
	}
	w, err := recs.Watch(ctx, records.System, c.Name, "", filter)
	if err != nil {
		w = nil
	}
	wc.mu.Lock()
	if wc.m == nil || len(wc.m) >= maxWatches {
		wc.m = map[watchKey]*records.Watch{}
	}
	wc.m[k] = w
	wc.mu.Unlock()
	return w
}
