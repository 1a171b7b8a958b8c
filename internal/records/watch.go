package records

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// Watch is what one realtime subscriber may see of a collection: the
// records its view rule lets the caller see, narrowed by a filter. Rules
// are checked in memory against each changed record, as the database would
// check them on a read, and follow the collection's current rules.
type Watch struct {
	s        *Service
	caller   *Caller
	name     string
	recordID string     // "" for the whole collection
	filter   query.Expr // nil for none
}

// Watch checks that caller may view records of the collection at all and
// compiles filter ("" for none) for it. recordID narrows the watch to one
// record.
func (s *Service) Watch(ctx context.Context, caller *Caller, name, recordID, filter string) (*Watch, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if recordID != "" && !schema.ValidID(recordID) {
		return nil, apperr.New(apperr.Invalid, "%q is not a record id", recordID)
	}
	if _, err := ruleFor(c, caller, "view"); err != nil {
		return nil, err
	}
	w := &Watch{s: s, caller: caller, name: c.Name, recordID: recordID}
	if strings.TrimSpace(filter) != "" {
		e, err := query.Parse(filter)
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "invalid filter: "+err.Error())
		}
		env := &query.Env{Dialect: s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: s.lookup}
		if err := env.Check(e); err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "invalid filter: "+err.Error())
		}
		if err := s.visible(c, caller, paths(e)); err != nil {
			return nil, err
		}
		w.filter = e
	}
	return w, nil
}

// Collection is the name of the watched collection.
func (w *Watch) Collection() string { return w.name }

// Matches reports whether the subscriber may see rec, a record of the
// watched collection as a change left it (or as it was, for a delete).
// A rule or filter that cannot be evaluated any more (the schema changed
// under it) does not match.
func (w *Watch) Matches(ctx context.Context, rec *schema.Record) bool {
	if rec.Collection == nil || rec.Collection.Name != w.name || w.recordID != "" && rec.ID != w.recordID {
		return false
	}
	c := rec.Collection
	rule, err := ruleFor(c, w.caller, "view")
	if err != nil {
		return false
	}
	fetch := w.s.fetch
	if rule != "" {
		e, err := w.s.parsedRule(rule)
		if err != nil {
			return false
		}
		env := &query.Env{Dialect: w.s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: w.s.lookup, Request: w.caller.Request}
		if ok, err := env.Eval(ctx, e, rec, fetch); err != nil || !ok {
			return false
		}
	}
	if w.filter != nil {
		env := &query.Env{Dialect: w.s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: w.s.lookup}
		if ok, err := env.Eval(ctx, w.filter, rec, fetch); err != nil || !ok {
			return false
		}
	}
	return true
}

// fetch loads a related record for in-memory rule checks.
func (s *Service) fetch(ctx context.Context, collection, id string) (*schema.Record, error) {
	c := s.lookup(collection)
	if c == nil {
		return nil, nil
	}
	// Events arrive as soon as their change commits: a replica may not
	// have the related record yet.
	r, err := store.GetRecordIf(store.ReadPrimary(ctx), s.db.Reader(), c, id, "", &sqldb.Args{Dialect: s.db.Dialect()}, false)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return r, nil
}

// rules caches parsed rules by their text; rules are few and change
// rarely.
var rules sync.Map // string -> query.Expr

func (s *Service) parsedRule(rule string) (query.Expr, error) {
	if e, ok := rules.Load(rule); ok {
		return e.(query.Expr), nil
	}
	e, err := query.Parse(rule)
	if err != nil {
		return nil, fmt.Errorf("rule %q: %w", rule, err)
	}
	rules.Store(rule, e)
	return e, nil
}

// EventRecord reads the record of an outbox event of the named
// collection.
func (s *Service) EventRecord(ctx context.Context, collection string, data []byte) (*schema.Record, error) {
	c, err := s.Collection(ctx, collection)
	if err != nil {
		return nil, err
	}
	return c.ParseInternalJSON(data)
}
