package records

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// Limits of a list request.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ListParams select a page of records.
type ListParams struct {
	Filter string
	Sort   string
	Limit  int
	// Cursor continues a previous list with the same filter and sort.
	Cursor string
	// Total asks for the count of every record the filter selects.
	Total bool
}

// Page is one page of a list.
type Page struct {
	Items []*schema.Record
	// NextCursor continues after the last item; "" on the last page.
	NextCursor string
	Total      *int64
}

// List returns a page of the records of a collection that match the filter,
// in sort order. Pages are found by key (the seek method), so a cursor stays
// valid while records are inserted and deleted.
func (s *Service) List(ctx context.Context, name string, p ListParams) (*Page, error) {
	c, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.list(ctx, c, p)
}

// Audit lists the audit log, for superusers, with the filter, sort and
// cursor of any list.
func (s *Service) Audit(ctx context.Context, p ListParams) (*Page, error) {
	if !callerOf(ctx).Superuser {
		return nil, apperr.New(apperr.Forbidden, "only superusers may read the audit log")
	}
	return s.list(ctx, audit.Collection, p)
}

func (s *Service) list(ctx context.Context, c *schema.Collection, p ListParams) (*Page, error) {
	name := c.Name
	if p.Limit <= 0 {
		p.Limit = DefaultLimit
	}
	if p.Limit > MaxLimit {
		return nil, apperr.New(apperr.Invalid, "limit %d is over the maximum of %d", p.Limit, MaxLimit)
	}
	expr, err := query.Parse(p.Filter)
	if err != nil {
		return nil, queryErr(err, "filter")
	}
	sorts, err := query.ParseSort(p.Sort)
	if err != nil {
		return nil, queryErr(err, "sort")
	}
	caller := callerOf(ctx)
	sortPaths := make([]string, len(sorts))
	for i, so := range sorts {
		sortPaths[i] = so.Path
	}
	if err := s.visible(c, caller, append(paths(expr), sortPaths...)); err != nil {
		return nil, err
	}
	d := s.db.Dialect()
	env := &query.Env{Dialect: d, Collection: c, Alias: store.Alias, Lookup: s.lookup}
	args := &sqldb.Args{Dialect: d}
	where, err := env.Where(expr, args)
	if err != nil {
		return nil, queryErr(err, "filter")
	}
	ruleText, err := ruleFor(c, caller, "list")
	if err != nil {
		return nil, err
	}
	rule, err := s.ruleSQL(c, caller, "list", args)
	if err != nil {
		return nil, err
	}
	if rule != "" {
		if where != "" {
			where = "(" + where + ") AND (" + rule + ")"
		} else {
			where = rule
		}
	}
	keys, err := env.Order(sorts)
	if err != nil {
		return nil, queryErr(err, "sort")
	}
	// The count takes the filter's values only, not the cursor's.
	countArgs := &sqldb.Args{Dialect: d, Values: slices.Clone(args.Values)}
	qhash := queryHash(name, p.Filter, p.Sort)
	conds := []string{}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if p.Cursor != "" {
		last, err := s.openCursor(p.Cursor, qhash)
		if err != nil {
			return nil, err
		}
		after, err := env.After(keys, last, args)
		if err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "the cursor does not fit this list")
		}
		conds = append(conds, "("+after+")")
	}
	keySQL := make([]string, len(keys))
	for i, k := range keys {
		keySQL[i] = k.SQL
	}
	load := func(ctx context.Context) (*Page, error) {
		page := &Page{}
		if p.Total {
			n, err := store.CountRecords(ctx, s.db.Reader(), c, where, countArgs)
			if err != nil {
				return nil, storeErr(err, c)
			}
			page.Total = &n
		}
		recs, keyVals, err := store.ListRecords(ctx, s.db.Reader(), c, store.ListQuery{
			Where: strings.Join(conds, " AND "), Args: args,
			OrderBy: query.OrderBy(keys), Keys: keySQL, Limit: p.Limit + 1,
		})
		if err != nil {
			return nil, storeErr(err, c)
		}
		if len(recs) > p.Limit {
			recs = recs[:p.Limit]
			page.NextCursor, err = s.sealCursor(keyVals[p.Limit-1], qhash)
			if err != nil {
				return nil, err
			}
		}
		page.Items = recs
		return page, nil
	}
	if c.CachePolicy() == schema.CacheWriteBack {
		s.ctr.rw.RLock()
		defer s.ctr.rw.RUnlock()
	}
	var page *Page
	if key, ok := s.listKey(c, caller, ruleText, p); ok {
		page, err = s.cachedPage(ctx, c, key, load)
	} else {
		page, err = load(ctx)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range page.Items {
		s.addPending(r)
	}
	return page, nil
}

func queryErr(err error, param string) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		return &apperr.Error{Kind: apperr.Invalid, Msg: "invalid " + param + ": " + qe.Error(), Err: err,
			Fields: []schema.FieldError{{Field: param, Code: "invalid_" + param, Message: qe.Error()}}}
	}
	return err
}

func queryHash(name, filter, sort string) string {
	sum := sha256.Sum256([]byte(name + "\x00" + filter + "\x00" + sort))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// sealCursor encodes the key values of the last row of a page with a MAC,
// so that a client can neither forge nor alter them.
func (s *Service) sealCursor(keys []any, qhash string) (string, error) {
	return query.SealCursor(s.secret, qhash, keys)
}

func (s *Service) openCursor(tok, qhash string) ([]any, error) {
	keys, err := query.OpenCursor(s.secret, tok, qhash)
	switch {
	case errors.Is(err, query.ErrCursorQuery):
		return nil, apperr.New(apperr.Invalid, "the cursor belongs to a list with another filter or sort")
	case err != nil:
		return nil, apperr.New(apperr.Invalid, "the cursor is not valid; start the list again without one")
	}
	return keys, nil
}

// Expand loads the records that the named relation fields of recs point
// to. For each record it returns the expanded values by field name: a
// record (or nil) for a single relation, a list for a multiple one.
func (s *Service) Expand(ctx context.Context, c *schema.Collection, recs []*schema.Record, names []string) ([]map[string]any, error) {
	out := make([]map[string]any, len(recs))
	for i := range out {
		out[i] = make(map[string]any, len(names))
	}
	for _, name := range names {
		f := c.Field(name)
		if f == nil || f.Type != schema.Relation {
			return nil, &apperr.Error{Kind: apperr.Invalid, Msg: "invalid expand: " + name + " is not a relation field of " + c.Name,
				Fields: []schema.FieldError{{Field: "expand", Code: "invalid_expand", Message: name + " is not a relation field"}}}
		}
		target, err := s.Collection(ctx, f.Collection)
		if err != nil {
			return nil, err
		}
		var ids []string
		seen := map[string]bool{}
		for _, r := range recs {
			for _, id := range relIDs(r.Values[name]) {
				if !seen[id] {
					seen[id] = true
					ids = append(ids, id)
				}
			}
		}
		args := &sqldb.Args{Dialect: s.db.Dialect()}
		var related []*schema.Record
		if rule, err := s.ruleSQL(target, callerOf(ctx), "view", args); err == nil {
			// Only related records the caller may view are expanded.
			if related, err = store.GetMany(ctx, s.db.Reader(), target, ids, rule, args); err != nil {
				return nil, storeErr(err, target)
			}
		}
		byID := make(map[string]*schema.Record, len(related))
		for _, r := range related {
			byID[r.ID] = r
		}
		for i, r := range recs {
			if !f.Multiple {
				if id, ok := r.Values[name].(string); ok && byID[id] != nil {
					out[i][name] = byID[id]
				} else {
					out[i][name] = nil
				}
				continue
			}
			list := []*schema.Record{}
			for _, id := range relIDs(r.Values[name]) {
				if rel := byID[id]; rel != nil {
					list = append(list, rel)
				}
			}
			out[i][name] = list
		}
	}
	return out, nil
}

func relIDs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	}
	return nil
}
