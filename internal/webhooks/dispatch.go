package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
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

// Dispatch turns record events the broker has acknowledged into delivery
// jobs: one for every enabled endpoint an event matches. It is the outbox
// relay's Dispatch: the endpoints are read and matched here, and the
// returned write enqueues the jobs in the transaction that marks the
// events sent, so each event's jobs are enqueued once. The jobs' unique
// keys (endpoint and event) keep an event dispatched again while its job
// is pending from adding a second one.
func (s *Service) Dispatch(ctx context.Context, events []broker.Message) (func(*store.Tx) error, error) {
	// Most writes meet no endpoint: one look for the whole batch.
	endpoints, err := listEndpoints(store.ReadPrimary(ctx), s.db.Reader(), true)
	if err != nil || len(endpoints) == 0 {
		return nil, err
	}
	var all []deliverArgs
	for _, m := range events {
		if strings.HasPrefix(m.Topic, outbox.TopicPrefix) {
			all = s.deliveries(ctx, all, endpoints, m)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return func(tx *store.Tx) error {
		enqueued := 0
		for _, args := range all {
			_, err := s.jobs.Enqueue(ctx, tx, JobKind, args, jobs.EnqueueOptions{
				Queue: s.cfg.Queue, MaxAttempts: s.cfg.MaxAttempts, Timeout: s.jobTimeout(),
				UniqueKey: uniqueKey(args.Webhook, args.Event), Tags: []string{"webhook:" + args.Webhook},
			})
			if errors.Is(err, jobs.ErrDuplicate) {
				continue // dispatched before, and its job is still pending
			}
			if err != nil {
				return err
			}
			enqueued++
		}
		tx.AfterCommit(func() { s.m.enqueued.Add(float64(enqueued)) })
		return nil
	}, nil
}

// deliveries appends to out the delivery of event m to each endpoint it
// matches. An event that does not read is logged and skipped: delivering
// it again would not change that.
func (s *Service) deliveries(ctx context.Context, out []deliverArgs, endpoints []*Endpoint, m broker.Message) []deliverArgs {
	var ev outbox.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.ID == "" {
		s.log.Warn("webhooks: unreadable event; skipped", "event", m.ID, "err", err)
		return out
	}
	typ, ok := eventTypes[ev.Op]
	if !ok {
		s.log.Warn("webhooks: event of an unknown operation; skipped", "event", ev.ID, "op", ev.Op)
		return out
	}
	rec, err := s.recs.EventRecord(ctx, ev.Collection, ev.Record)
	if err != nil {
		if apperr.KindOf(err) != apperr.NotFound { // else the collection is gone
			s.log.Warn("webhooks: event record unreadable; skipped", "event", ev.ID, "collection", ev.Collection, "err", err)
		}
		return out
	}
	var targets []*Endpoint
	for _, e := range endpoints {
		if s.matches(ctx, e, ev.Op, rec) {
			targets = append(targets, e)
		}
	}
	if len(targets) == 0 {
		return out
	}
	recJSON, err := rec.AppendJSON(nil, nil)
	if err != nil {
		s.log.Warn("webhooks: event record does not render; skipped", "event", ev.ID, "err", err)
		return out
	}
	payload, err := json.Marshal(Payload{Type: typ, Timestamp: ev.Time.UTC().Format(time.RFC3339Nano),
		Data: RecordData{Collection: ev.Collection, Record: recJSON}})
	if err != nil {
		s.log.Warn("webhooks: event payload does not encode; skipped", "event", ev.ID, "err", err)
		return out
	}
	var trace map[string]string
	for _, h := range []string{"traceparent", "tracestate"} {
		if v := m.Header[h]; v != "" {
			if trace == nil {
				trace = map[string]string{}
			}
			trace[h] = v
		}
	}
	for _, e := range targets {
		out = append(out, deliverArgs{Webhook: e.ID, Event: ev.ID, Type: typ, Payload: payload, Trace: trace})
	}
	return out
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
