package records

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// DefaultFlushInterval is how often write-back increments are written to
// the database when Options.FlushInterval is zero.
const DefaultFlushInterval = time.Second

// counters holds the write-back increments this node has accepted and
// not yet written to the database.
//
// Increments are summed in this process, per record and field, and
// written in one transaction every flush interval, and by Close. Reads of
// a write-back collection on this node add the pending sums, so this
// node's callers see their increments at once; other nodes see them after
// the next flush. A node that crashes loses the increments it accepted
// since the start of its last successful flush: at most one flush
// interval's worth, plus the time one flush takes. The increments stay in
// this process whichever cache backend is configured.
type counters struct {
	mu      sync.Mutex
	pending map[recordRef]map[string]float64
	started bool
	stop    chan struct{}
	done    chan struct{}
	// rw orders reads of write-back collections (read locks) with a
	// flush (the write lock), so that a read never counts an increment
	// twice (in the database and pending) or not at all.
	rw sync.RWMutex
	// flushing serializes flushes.
	flushing sync.Mutex
}

type recordRef struct{ collection, id string }

// Increment adds to the counter fields of a record of a write-back
// collection: body maps counter names to the amounts to add (numbers,
// negative ones too). The caller needs the collection's update rule,
// checked on the current record with @request.body holding the amounts.
// The increments are written to the database later (see counters); the
// returned record includes them.
func (s *Service) Increment(ctx context.Context, name, id string, body map[string]json.RawMessage) (*schema.Record, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c.CachePolicy() != schema.CacheWriteBack {
		return nil, apperr.New(apperr.Invalid, "collection %s takes no increments: its cache policy is not write-back", name)
	}
	if !schema.ValidID(id) {
		return nil, apperr.New(apperr.NotFound, "record not found in %s", name)
	}
	var ve schema.ValidationError
	deltas := make(map[string]float64, len(body))
	for k, raw := range body {
		var v float64
		switch {
		case !c.IsCounter(k):
			ve.Errors = append(ve.Errors, schema.FieldError{Field: k, Code: "not_a_counter", Message: fmt.Sprintf("%s is not a counter of %s (counters: %v)", k, name, c.Cache.Counters)})
		case json.Unmarshal(raw, &v) != nil || math.IsInf(v, 0) || math.IsNaN(v):
			ve.Errors = append(ve.Errors, schema.FieldError{Field: k, Code: "invalid_type", Message: k + " must be a number to add"})
		default:
			deltas[k] = v
		}
	}
	if len(body) == 0 {
		ve.Errors = append(ve.Errors, schema.FieldError{Field: "body", Code: "required", Message: "name at least one counter and the amount to add, as {\"views\": 1}"})
	}
	if len(ve.Errors) > 0 {
		return nil, apperr.FromValidation(&ve, "the increment is invalid")
	}
	caller := callerOf(ctx)
	rule, err := ruleFor(c, caller, "update")
	if err != nil {
		return nil, err
	}
	if err := checkProtected(c, caller, body); err != nil {
		return nil, err
	}

	s.ctr.rw.RLock()
	defer s.ctr.rw.RUnlock()
	r, err := s.current(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if rule != "" {
		vals := make(schema.Values, len(deltas))
		for k, v := range deltas {
			vals[k] = v
		}
		e, err := s.parsedRule(rule)
		if err != nil {
			return nil, err
		}
		env := &query.Env{Dialect: s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: s.lookup, Request: withBody(caller, body, vals).Request}
		if ok, err := env.Eval(ctx, e, r, s.fetch); err != nil || !ok {
			return nil, apperr.New(apperr.NotFound, "record not found in %s", name)
		}
	}
	s.ctr.add(recordRef{c.Name, id}, deltas)
	s.startFlusher()
	s.addPending(r)
	return r, nil
}

// current reads a record without rules: from the cache when c is cached.
func (s *Service) current(ctx context.Context, c *schema.Collection, id string) (*schema.Record, error) {
	if s.cached(c) {
		r, _, err := s.cachedRecord(ctx, c, id)
		return r, err
	}
	r, err := store.GetRecordIf(store.ReadPrimary(ctx), s.db.Reader(), c, id, "", &sqldb.Args{Dialect: s.db.Dialect()}, false)
	return r, storeErr(err, c)
}

func (ct *counters) add(ref recordRef, deltas map[string]float64) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.pending == nil {
		ct.pending = map[recordRef]map[string]float64{}
	}
	m := ct.pending[ref]
	if m == nil {
		m = make(map[string]float64, len(deltas))
		ct.pending[ref] = m
	}
	for k, v := range deltas {
		m[k] += v
	}
}

// take removes and returns every pending increment.
func (ct *counters) take() map[recordRef]map[string]float64 {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	p := ct.pending
	ct.pending = nil
	return p
}

// restore puts back increments a failed flush took.
func (ct *counters) restore(batch map[recordRef]map[string]float64) {
	for ref, deltas := range batch {
		ct.add(ref, deltas)
	}
}

// addPending adds this node's pending increments to r, a record of a
// write-back collection, in place. Call it under ctr.rw's read lock.
func (s *Service) addPending(r *schema.Record) {
	if r == nil || r.Collection == nil || r.Collection.CachePolicy() != schema.CacheWriteBack {
		return
	}
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	for k, v := range s.ctr.pending[recordRef{r.Collection.Name, r.ID}] {
		cur, _ := r.Values[k].(float64)
		r.Values[k] = cur + v
	}
}

// startFlusher starts the loop that writes increments every interval.
func (s *Service) startFlusher() {
	s.ctr.mu.Lock()
	defer s.ctr.mu.Unlock()
	if s.ctr.started {
		return
	}
	s.ctr.started = true
	s.ctr.stop, s.ctr.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.ctr.done)
		t := time.NewTicker(s.flushEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ctr.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), max(s.flushEvery, 5*time.Second))
				if err := s.Flush(ctx); err != nil {
					s.log.Warn("write-back: increments not written; retrying at the next interval", "err", err)
				}
				cancel()
			}
		}
	}()
}

// Flush writes every pending increment to the database, in one
// transaction, and invalidates (with write-through, refills) the cache
// entries of the records it changed. Each change is an update event. On
// failure the increments stay pending. Records or fields deleted since
// are skipped.
func (s *Service) Flush(ctx context.Context) error {
	s.ctr.flushing.Lock()
	defer s.ctr.flushing.Unlock()
	s.ctr.rw.Lock()
	defer s.ctr.rw.Unlock()
	batch := s.ctr.take()
	if len(batch) == 0 {
		return nil
	}
	// Lock rows in one order, so that flushes on two nodes cannot
	// deadlock.
	refs := slices.SortedFunc(maps.Keys(batch), func(a, b recordRef) int {
		return cmp.Or(cmp.Compare(a.collection, b.collection), cmp.Compare(a.id, b.id))
	})
	var written []*schema.Record
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		written = written[:0]
		now := s.now().UTC()
		for _, ref := range refs {
			c := s.lookup(ref.collection)
			if c == nil {
				continue
			}
			old, err := store.GetRecordIf(ctx, tx, c, ref.id, "", &sqldb.Args{Dialect: tx.Dialect}, true)
			if err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			vals := maps.Clone(old.Values)
			changed := false
			for k, d := range batch[ref] {
				if f := c.Field(k); f == nil || f.Type != schema.Number {
					continue
				}
				cur, _ := vals[k].(float64)
				vals[k] = cur + d
				changed = true
			}
			if !changed {
				continue
			}
			r := &schema.Record{Collection: c, ID: ref.id, Created: old.Created, Updated: now, Values: vals}
			if err := store.UpdateRecord(ctx, tx, c, r); err != nil {
				return err
			}
			if err := s.event(ctx, tx, outbox.OpUpdate, r); err != nil {
				return err
			}
			written = append(written, r)
		}
		return nil
	})
	if err != nil {
		s.ctr.restore(batch)
		return fmt.Errorf("write-back flush of %d records: %w", len(refs), err)
	}
	for _, r := range written {
		s.changed(ctx, r.Collection, r.ID, false)
	}
	return nil
}

// Close stops the write-back loop and writes the pending increments. The
// Service must not take increments afterwards.
func (s *Service) Close(ctx context.Context) error {
	s.ctr.mu.Lock()
	started := s.ctr.started
	s.ctr.started = false
	s.ctr.mu.Unlock()
	if started {
		close(s.ctr.stop)
		<-s.ctr.done
	}
	return s.Flush(ctx)
}
