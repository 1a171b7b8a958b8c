package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Collection describes the columns of _jobs that lists filter and sort
// by, in the terms of the filter language (see package query): the
// system fields id (the job's number; id = 42 and id = '42' both work)
// and created, and
//
//	kind, queue, state, unique_key, attempted_by   text
//	priority, attempt, max_attempts, timeout_ms    number
//	run_at, attempted_at, finished_at, lease_until datetime
//	tags                                           a list of strings (tags ~ 'cron')
//	args                                           json (args.to = 'ann@example.com')
//
// The filter is compiled against a derived table over _jobs (listFrom)
// that presents the columns with these types on both engines.
var Collection = &schema.Collection{
	Name: "_jobs", Type: schema.Base,
	Fields: []*schema.Field{
		{Name: "kind", Type: schema.Text},
		{Name: "queue", Type: schema.Text},
		{Name: "state", Type: schema.Text},
		{Name: "priority", Type: schema.Number},
		{Name: "attempt", Type: schema.Number},
		{Name: "max_attempts", Type: schema.Number},
		{Name: "timeout_ms", Type: schema.Number},
		{Name: "run_at", Type: schema.DateTime},
		{Name: "attempted_at", Type: schema.DateTime},
		{Name: "finished_at", Type: schema.DateTime},
		{Name: "lease_until", Type: schema.DateTime},
		{Name: "unique_key", Type: schema.Text},
		{Name: "attempted_by", Type: schema.Text},
		{Name: "tags", Type: schema.Select, Multiple: true},
		{Name: "args", Type: schema.JSON},
	},
}

// listAlias names the derived table in list queries.
const listAlias = "j"

// listFrom is the FROM clause of a list: _jobs with its raw columns
// (r_ and the name, for scanJob) beside the typed columns that Collection
// describes. On PostgreSQL the text timestamps become timestamptz, the
// integers double precision and the JSON text jsonb, as the record
// layout has them; PostgreSQL inlines the derived table, so conditions on
// the plain columns (state, kind, queue, id) still use _jobs' indexes.
// SQLite compares its columns as they are stored.
func listFrom(d sqldb.Dialect) string {
	cols := strings.Split(jobCols, ", ")
	raw := make([]string, len(cols))
	for i, c := range cols {
		raw[i] = c + " AS r_" + c
	}
	typed := `id, kind, queue, state, priority, attempt, max_attempts, timeout_ms, run_at, created, attempted_at,
		finished_at, lease_until, unique_key, locked_by AS attempted_by, tags, args`
	if d == sqldb.Postgres {
		typed = `id, kind, queue, state, priority::float8 AS priority, attempt::float8 AS attempt,
		max_attempts::float8 AS max_attempts, timeout_ms::float8 AS timeout_ms, run_at::timestamptz AS run_at,
		created::timestamptz AS created, attempted_at::timestamptz AS attempted_at, finished_at::timestamptz AS finished_at,
		lease_until::timestamptz AS lease_until, unique_key, locked_by AS attempted_by, tags::jsonb AS tags, args::jsonb AS args`
	}
	return `(SELECT ` + strings.Join(raw, ", ") + `, ` + typed + ` FROM _jobs) AS ` + listAlias
}

// listCols are the raw columns of a list, in jobCols' order.
func listCols() string {
	cols := strings.Split(jobCols, ", ")
	for i, c := range cols {
		cols[i] = listAlias + ".r_" + c
	}
	return strings.Join(cols, ", ")
}

// checkFilter refuses what the derived table cannot answer, and lets the
// job number be written as a number: id = 42 becomes id = '42', which
// both engines compare as the integer it is.
func checkFilter(e query.Expr) error {
	switch e := e.(type) {
	case *query.Logical:
		if err := checkFilter(e.X); err != nil {
			return err
		}
		return checkFilter(e.Y)
	case *query.Not:
		return checkFilter(e.X)
	case *query.Compare:
		switch e.Path {
		case schema.FieldUpdated:
			return filterError(fmt.Sprintf("at %d: jobs have no field %q; use created, attempted_at or finished_at", e.PathPos, e.Path))
		case schema.FieldID:
			if e.Op == query.Contains || e.Op == query.NotContains {
				return filterError(fmt.Sprintf("at %d: id is a job number; compare it with =, !=, <, >, in", e.OpPos))
			}
			for i, v := range e.Values {
				switch v.Kind {
				case query.KindNumber:
					if v.Num != float64(int64(v.Num)) {
						return filterError(fmt.Sprintf("at %d: id %v is not a whole number", v.Pos, v.Num))
					}
					e.Values[i] = query.Literal{Kind: query.KindString, Pos: v.Pos, Str: strconv.FormatInt(int64(v.Num), 10)}
				case query.KindString:
					if _, err := strconv.ParseInt(v.Str, 10, 64); err != nil {
						return filterError(fmt.Sprintf("at %d: id %q is not a job number", v.Pos, v.Str))
					}
				}
			}
		}
	}
	return nil
}

func filterError(msg string) error {
	return paramError("filter", msg)
}

// paramError is an Invalid error naming the query parameter at fault.
func paramError(param, msg string) error {
	return &apperr.Error{Kind: apperr.Invalid, Msg: "invalid " + param + ": " + msg,
		Fields: []schema.FieldError{{Field: param, Code: "invalid_" + param, Message: msg}}}
}

func queryErr(err error, param string) error {
	var qe *query.Error
	if errors.As(err, &qe) {
		e := paramError(param, qe.Error()).(*apperr.Error)
		e.Err = err
		return e
	}
	return err
}

// listQuery compiles p into the conditions and order of a list, adding
// the filter's values to a.
func (s *Service) listQuery(p *ListParams, a *sqldb.Args) (conds []string, keys []query.OrderKey, err error) {
	for _, st := range p.States {
		if !st.Valid() {
			return nil, nil, paramError("state", fmt.Sprintf("unknown state %q", st))
		}
	}
	expr, err := query.Parse(p.Filter)
	if err != nil {
		return nil, nil, queryErr(err, "filter")
	}
	if err := checkFilter(expr); err != nil {
		return nil, nil, err
	}
	sorts, err := query.ParseSort(p.Sort)
	if err != nil {
		return nil, nil, queryErr(err, "sort")
	}
	for _, so := range sorts {
		if so.Path == schema.FieldUpdated {
			return nil, nil, paramError("sort", fmt.Sprintf("at %d: jobs have no field %q; use created, attempted_at or finished_at", so.Pos, so.Path))
		}
	}
	env := &query.Env{Dialect: a.Dialect, Collection: Collection, Alias: listAlias}
	where, err := env.Where(expr, a)
	if err != nil {
		return nil, nil, queryErr(err, "filter")
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	col := func(c string) string { return listAlias + "." + a.Dialect.Quote(c) }
	if len(p.States) > 0 {
		conds = append(conds, sqldb.In(a, col("state"), p.States))
	}
	if len(p.Kinds) > 0 {
		conds = append(conds, sqldb.In(a, col("kind"), p.Kinds))
	}
	if len(p.Queues) > 0 {
		conds = append(conds, sqldb.In(a, col("queue"), p.Queues))
	}
	if keys, err = env.Order(sorts); err != nil {
		return nil, nil, queryErr(err, "sort")
	}
	return conds, keys, nil
}

// listHash identifies the selection and order of a list, so that a cursor
// continues only the list it came from.
func listHash(p *ListParams) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %q", p.Filter, p.Sort, p.States, p.Kinds, p.Queues)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:9])
}

// sealCursor encodes the key values of a page's last job with a MAC, so
// that a client can neither forge nor alter them. The job number, read
// as an integer, is kept as its decimal text: the filter language knows
// ids as text. JSON keys read as bytes are kept as text.
func (s *Service) sealCursor(keys []query.OrderKey, vals []any, qhash string) (string, error) {
	vals = append([]any(nil), vals...)
	for i, k := range keys {
		switch v := vals[i].(type) {
		case int64:
			if k.Path == schema.FieldID {
				vals[i] = strconv.FormatInt(v, 10)
			}
		case []byte: // JSON text on PostgreSQL
			vals[i] = string(v)
		}
	}
	return query.SealCursor(s.secret, qhash, vals)
}

// openCursor checks a cursor's MAC and returns its key values.
func (s *Service) openCursor(tok, qhash string) ([]any, error) {
	keys, err := query.OpenCursor(s.secret, tok, qhash)
	switch {
	case errors.Is(err, query.ErrCursorQuery):
		return nil, paramError("cursor", "the cursor belongs to a list with another filter, sort or state, kind and queue")
	case err != nil:
		return nil, paramError("cursor", "the cursor is not valid; start the list again without one")
	}
	return keys, nil
}

// list runs a list query.
func (s *Service) list(ctx context.Context, p ListParams) (*ListResult, error) {
	a := newArgs(s.db.Dialect())
	conds, keys, err := s.listQuery(&p, a)
	if err != nil {
		return nil, err
	}
	qhash := listHash(&p)
	if p.Cursor != "" {
		last, err := s.openCursor(p.Cursor, qhash)
		if err != nil {
			return nil, err
		}
		env := &query.Env{Dialect: a.Dialect, Collection: Collection, Alias: listAlias}
		after, err := env.After(keys, last, a)
		if err != nil {
			return nil, paramError("cursor", "the cursor does not fit this list; start it again without one")
		}
		conds = append(conds, "("+after+")")
	}
	keySQL := make([]string, len(keys))
	for i, k := range keys {
		keySQL[i] = k.SQL
	}
	stmt := `SELECT ` + listCols() + `, ` + strings.Join(keySQL, ", ") + ` FROM ` + listFrom(a.Dialect)
	if len(conds) > 0 {
		stmt += ` WHERE ` + strings.Join(conds, " AND ")
	}
	stmt += ` ORDER BY ` + query.OrderBy(keys) + ` LIMIT ` + a.Add(p.Limit+1)
	if p.Offset > 0 {
		stmt += ` OFFSET ` + a.Add(p.Offset)
	}
	rows, err := s.db.Reader().QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	res := &ListResult{Jobs: []*Job{}}
	var lastKeys []any
	for rows.Next() {
		if len(res.Jobs) == p.Limit {
			res.More = true
			break
		}
		kv := make([]any, len(keys))
		j, err := scanJob(rowWithKeys{rows, kv})
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		res.Jobs = append(res.Jobs, j)
		lastKeys = kv
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	if res.More {
		if res.NextCursor, err = s.sealCursor(keys, lastKeys, qhash); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// rowWithKeys scans a job's columns and then its order keys into keys.
type rowWithKeys struct {
	r    scanner
	keys []any
}

func (r rowWithKeys) Scan(dest ...any) error {
	for i := range r.keys {
		dest = append(dest, &r.keys[i])
	}
	return r.r.Scan(dest...)
}
