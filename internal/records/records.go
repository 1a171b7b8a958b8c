package records

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// ETag returns the strong entity tag of a record: a hash of its JSON.
func ETag(r *schema.Record) string {
	b, _ := r.AppendJSON(nil, nil)
	return ETagOf(b)
}

// ETagOf returns the entity tag of a record's full JSON (or of a page of
// them): its 64-bit xxHash. Tags only tell versions of one resource apart,
// which a 2^-64 chance of two versions colliding does well; over a 15 KB
// page SHA-256 took 8.4 µs (5% of a list request's CPU), xxHash 1.2 µs.
func ETagOf(recordJSON []byte) string {
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], xxhash.Sum64(recordJSON))
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// WriteOptions are the conditions and keys a write may carry.
type WriteOptions struct {
	// IfMatch, when set, is the ETag the stored record must have ("*" for
	// any); a mismatch fails with PreconditionFailed.
	IfMatch string
	// IdempotencyKey makes a create safe to retry: a repeat with the same
	// key and BodyHash returns the first response, a repeat with another
	// body fails with Unprocessable.
	IdempotencyKey string
	BodyHash       string
	// Scope separates the keys of different callers.
	Scope string
	// Set holds values the server writes into fields after the body has
	// been validated, such as a password hash.
	Set schema.Values
}

// Created is the outcome of a create. Replay is set, instead of Record,
// when an earlier request with the same idempotency key made the record.
type Created struct {
	Record *schema.Record
	// JSON, when not nil, is Record as the API writes it (AppendJSON),
	// encoded already for its event.
	JSON   []byte
	Replay []byte
}

// Create validates body and inserts a record into the collection.
func (s *Service) Create(ctx context.Context, name string, body map[string]json.RawMessage, o WriteOptions) (*Created, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	scope := name + "/" + o.Scope
	if o.IdempotencyKey != "" {
		if out, err := s.replay(ctx, scope, o); !errors.Is(err, store.ErrNotFound) {
			return out, err
		}
	}
	caller := callerOf(ctx)
	if _, err := ruleFor(c, caller, "create"); err != nil {
		return nil, err
	}
	if err := checkProtected(c, caller, body); err != nil {
		return nil, err
	}
	vals, id, err := c.Decode(body, nil, false)
	if err != nil {
		return nil, apperr.FromValidation(err, "the record is invalid")
	}
	for k, v := range o.Set {
		vals[k] = v
	}
	now := s.now().UTC()
	if id == "" {
		id = NewID()
	}
	r := &schema.Record{Collection: c, ID: id, Created: now, Updated: now, Values: vals}
	// The create rule sees the record as it would be stored. One that
	// holds for the record in memory needs no query in the transaction,
	// where every query holds up the writes committed with it.
	ruleCaller := withBody(caller, body, vals)
	checked := s.holdsInMemory(ctx, c, ruleCaller, "create", r)
	var out []byte // the answer's JSON, when encoding the event gave it
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := checkRelations(ctx, tx, c, vals, s.lookup); err != nil {
			return err
		}
		if err := store.InsertRecord(ctx, tx, c, r); err != nil {
			return err
		}
		if !checked {
			if err := s.checkWritten(ctx, tx, c, ruleCaller, "create", id); err != nil {
				return err
			}
		}
		if s.events != nil {
			rec, err := r.AppendInternalJSON(nil)
			if err != nil {
				return fmt.Errorf("encode record: %w", err)
			}
			if err := s.events.AppendEncoded(ctx, tx, outbox.OpCreate, r, rec); err != nil {
				return err
			}
			if !c.HidesData() {
				out = rec // what the answer holds too
			}
		}
		if o.IdempotencyKey == "" {
			return nil
		}
		resp := out
		if resp == nil {
			if resp, err = r.MarshalJSON(); err != nil {
				return err
			}
		}
		it := &store.Idempotent{BodyHash: o.BodyHash, Status: 201, Response: resp}
		return store.PutIdempotent(ctx, tx, scope, o.IdempotencyKey, it, now, now.Add(s.idemTTL))
	})
	if errors.Is(err, store.ErrConflict) && o.IdempotencyKey != "" {
		var ue *store.UniqueError
		if !errors.As(err, &ue) {
			// Another request with the key committed first.
			return s.replay(ctx, scope, o)
		}
	}
	if err != nil {
		return nil, storeErr(err, c)
	}
	s.changed(ctx, c, id, false)
	return &Created{Record: r, JSON: out}, nil
}

func (s *Service) replay(ctx context.Context, scope string, o WriteOptions) (*Created, error) {
	it, err := store.FindIdempotent(ctx, s.db.Reader(), s.db.Dialect(), scope, o.IdempotencyKey, s.now())
	if err != nil {
		return nil, err
	}
	if it.BodyHash != o.BodyHash {
		return nil, apperr.New(apperr.Unprocessable, "the Idempotency-Key %q was already used with a different request body", o.IdempotencyKey)
	}
	return &Created{Replay: it.Response}, nil
}

// Get returns the record with the id.
func (s *Service) Get(ctx context.Context, name, id string) (*schema.Record, error) {
	r, _, err := s.GetJSON(ctx, name, id)
	return r, err
}

// GetJSON is Get, and also returns the record's JSON as AppendJSON(nil,
// nil) would write it when a cached view had it at hand (nil otherwise).
// The JSON is shared: the caller must not modify it.
func (s *Service) GetJSON(ctx context.Context, name, id string) (*schema.Record, []byte, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	if !schema.ValidID(id) {
		return nil, nil, apperr.New(apperr.NotFound, "record not found in %s", name)
	}
	caller := callerOf(ctx)
	if c.CachePolicy() == schema.CacheWriteBack {
		s.ctr.rw.RLock()
		defer s.ctr.rw.RUnlock()
	}
	if s.cached(c) {
		r, pub, err := s.getCached(ctx, c, caller, id)
		if !errors.Is(err, errUncached) {
			s.addPending(r) // nothing to add, and no JSON, unless write-back
			return r, pub, err
		}
	}
	args := &sqldb.Args{Dialect: s.db.Dialect()}
	rule, err := s.ruleSQL(c, caller, "view", args)
	if err != nil {
		return nil, nil, err
	}
	r, err := store.GetRecordIf(ctx, s.db.Reader(), c, id, rule, args, false)
	if err != nil {
		return nil, nil, storeErr(err, c)
	}
	s.addPending(r)
	return r, nil, nil
}

// Update changes the record with the id: a partial update that keeps the
// fields body leaves out, or with replace a full replacement.
func (s *Service) Update(ctx context.Context, name, id string, body map[string]json.RawMessage, replace bool, o WriteOptions) (*schema.Record, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if !schema.ValidID(id) {
		return nil, apperr.New(apperr.NotFound, "record not found in %s", name)
	}
	caller := callerOf(ctx)
	if _, err := ruleFor(c, caller, "update"); err != nil {
		return nil, err
	}
	if err := checkProtected(c, caller, body); err != nil {
		return nil, err
	}
	var r *schema.Record
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		// The rule is checked on the stored record, locked, in the
		// transaction that changes it: nothing can change in between.
		args := &sqldb.Args{Dialect: tx.Dialect}
		rule, err := s.ruleSQL(c, withBody(caller, body, decodedBody(c, body)), "update", args)
		if err != nil {
			return err
		}
		old, err := store.GetRecordIf(ctx, tx, c, id, rule, args, true)
		if err != nil {
			return err
		}
		if err := checkMatch(old, o.IfMatch); err != nil {
			return err
		}
		vals, _, err := c.Decode(body, old.Values, replace)
		if err != nil {
			return apperr.FromValidation(err, "the record is invalid")
		}
		// Only the relations the body sets are checked: one it leaves as
		// it was may name a record deleted since, which this change does
		// not touch (and checking it cost a query per update).
		if err := checkRelations(ctx, tx, c, setBy(vals, body), s.lookup); err != nil {
			return err
		}
		r = &schema.Record{Collection: c, ID: id, Created: old.Created, Updated: s.now().UTC(), Values: vals}
		if err := store.UpdateRecord(ctx, tx, c, r); err != nil {
			return err
		}
		return s.event(ctx, tx, outbox.OpUpdate, r)
	})
	if err != nil {
		return nil, storeErr(err, c)
	}
	s.changed(ctx, c, id, false)
	return r, nil
}

// Delete deletes the record with the id.
func (s *Service) Delete(ctx context.Context, name, id string, o WriteOptions) error {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return err
	}
	if !schema.ValidID(id) {
		return apperr.New(apperr.NotFound, "record not found in %s", name)
	}
	caller := callerOf(ctx)
	if _, err := ruleFor(c, caller, "delete"); err != nil {
		return err
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		args := &sqldb.Args{Dialect: tx.Dialect}
		rule, err := s.ruleSQL(c, caller, "delete", args)
		if err != nil {
			return err
		}
		if o.IfMatch == "" && s.events == nil {
			return store.DeleteRecordIf(ctx, tx, c, id, rule, args)
		}
		// The event of a delete carries the record as it was, which the
		// delete returns; a failed If-Match undoes the write.
		old, err := store.DeleteRecordReturning(ctx, tx, c, id, rule, args)
		if err != nil {
			return err
		}
		if err := checkMatch(old, o.IfMatch); err != nil {
			return err
		}
		return s.event(ctx, tx, outbox.OpDelete, old)
	})
	if err != nil {
		return storeErr(err, c)
	}
	s.changed(ctx, c, id, true)
	return nil
}

// event writes the outbox event of a change, when events are on.
func (s *Service) event(ctx context.Context, tx *store.Tx, op string, r *schema.Record) error {
	if s.events == nil {
		return nil
	}
	return s.events.Append(ctx, tx, op, r)
}

func checkMatch(r *schema.Record, ifMatch string) error {
	if ifMatch == "" || ifMatch == "*" {
		return nil
	}
	if ifMatch != ETag(r) {
		return apperr.New(apperr.PreconditionFailed, "the record has changed since the ETag in If-Match was read")
	}
	return nil
}

// setBy returns the values of vals whose keys body sets.
func setBy(vals schema.Values, body map[string]json.RawMessage) schema.Values {
	out := make(schema.Values, len(body))
	for k := range body {
		if v, ok := vals[k]; ok {
			out[k] = v
		}
	}
	return out
}

// checkRelations verifies that every id a relation field names exists.
func checkRelations(ctx context.Context, tx *store.Tx, c *schema.Collection, vals schema.Values, lookup func(string) *schema.Collection) error {
	var ve schema.ValidationError
	for _, f := range c.Fields {
		if f.Type != schema.Relation || vals[f.Name] == nil {
			continue
		}
		var ids []string
		switch v := vals[f.Name].(type) {
		case string:
			ids = []string{v}
		case []string:
			ids = v
		}
		target := lookup(f.Collection)
		if target == nil {
			if f.Collection != c.Name {
				return fmt.Errorf("relation %s.%s: collection %s is gone", c.Name, f.Name, f.Collection)
			}
			target = c
		}
		found, err := store.Exist(ctx, tx, tx.Dialect, target, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if !found[id] {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: f.Name, Code: "not_found", Message: fmt.Sprintf("no record %q in %s", id, f.Collection)})
			}
		}
	}
	if len(ve.Errors) > 0 {
		return apperr.FromValidation(&ve, "the record is invalid")
	}
	return nil
}

// errNeedsQuery stops an in-memory rule check that would follow a
// relation: what it reads must be read in the transaction.
var errNeedsQuery = errors.New("the rule follows a relation")

// holdsInMemory reports whether the rule of op lets caller write r, as r
// would be stored, without a query: query.Eval gives the answer the
// database would. False means not known that way: the rule follows a
// relation (what it reads must be read in the write's transaction), Eval
// cannot answer, or the rule refuses r; checkWritten then decides on the
// written row, and its refusal is the one the caller gets.
func (s *Service) holdsInMemory(ctx context.Context, c *schema.Collection, caller *Caller, op string, r *schema.Record) bool {
	rule, err := ruleFor(c, caller, op)
	if err != nil || rule == "" {
		return err == nil
	}
	e, err := s.parsedRule(rule)
	if err != nil {
		return false
	}
	env := &query.Env{Dialect: s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: s.lookup, Request: caller.Request}
	ok, err := env.Eval(ctx, e, r, func(context.Context, string, string) (*schema.Record, error) {
		return nil, errNeedsQuery
	})
	return ok && err == nil
}

// checkWritten checks the rule of op on the record with the id as the
// transaction now holds it, and fails with Forbidden when it does not hold.
func (s *Service) checkWritten(ctx context.Context, tx *store.Tx, c *schema.Collection, caller *Caller, op, id string) error {
	args := &sqldb.Args{Dialect: tx.Dialect}
	rule, err := s.ruleSQL(c, caller, op, args)
	if err != nil || rule == "" {
		return err
	}
	if _, err := store.GetRecordIf(ctx, tx, c, id, rule, args, false); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return apperr.New(apperr.Forbidden, "the %s rule of %s does not allow this record", op, c.Name)
		}
		return err
	}
	return nil
}

// withBody returns caller with @request.body set to the values the body
// gives (vals holds them decoded).
func withBody(caller *Caller, body map[string]json.RawMessage, vals schema.Values) *Caller {
	if caller.Superuser || caller.Request == nil {
		return caller
	}
	req := *caller.Request
	req.Body = make(map[string]any, len(body))
	for k := range body {
		if v, ok := vals[k]; ok {
			req.Body[k] = v
		}
	}
	return &Caller{Request: &req, Principal: caller.Principal}
}

// decodedBody decodes the fields a body gives, ignoring what does not
// decode (validation reports that later).
func decodedBody(c *schema.Collection, body map[string]json.RawMessage) schema.Values {
	vals := schema.Values{}
	for k, raw := range body {
		if f := c.Field(k); f != nil {
			if v, fe := f.Value(raw); fe == nil {
				vals[k] = v
			}
		} else if c.Type == schema.Document {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				vals[k] = v
			}
		}
	}
	return vals
}
