package query

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Fetch returns the record of a collection with the given id, or nil and
// no error when there is none. Eval calls it to follow relations.
type Fetch func(ctx context.Context, collection, id string) (*schema.Record, error)

// Eval reports whether the record rec, held in memory, satisfies e: the
// same answer as a query selecting rec with Where would give on
// env.Dialect, for a record stored with rec's values. It serves where there
// is no query to run, such as a create rule, checked before the record
// exists, and the filters of realtime subscriptions. Relations are
// followed through fetch, which is called at most once per record; a nil
// fetch finds no records. A nil e is true.
//
// Like Where, Eval type-checks e first and returns the same errors. It
// agrees with the database on text as SQLite and a PostgreSQL database of
// the C locale compare it: by bytes, with ~ folding the ASCII letters
// only; under another locale PostgreSQL may order text, and fold other
// letters, as that locale does.
func (env *Env) Eval(ctx context.Context, e Expr, rec *schema.Record, fetch Fetch) (bool, error) {
	if err := env.check(nil, false); err != nil {
		return false, err
	}
	if rec == nil {
		return false, errors.New("query: Eval needs a record")
	}
	if e == nil {
		return true, nil
	}
	c := &compiler{env: env, d: env.Dialect, args: &sqldb.Args{Dialect: env.Dialect}, bound: map[*Compare]bound{}}
	if _, err := c.expr(e, env.root()); err != nil {
		return false, err
	}
	ev := &evaluator{env: env, ctx: ctx, fetch: fetch, bound: c.bound, seen: map[[2]string]*schema.Record{}}
	return ev.expr(e, rec)
}

type evaluator struct {
	env   *Env
	ctx   context.Context
	fetch Fetch
	bound map[*Compare]bound
	seen  map[[2]string]*schema.Record // fetched records by collection and id
}

func (ev *evaluator) expr(e Expr, rec *schema.Record) (bool, error) {
	switch e := e.(type) {
	case *Logical:
		x, err := ev.expr(e.X, rec)
		if err != nil || x == (e.Op == Or) {
			return x, err
		}
		return ev.expr(e.Y, rec)
	case *Not:
		x, err := ev.expr(e.X, rec)
		return !x && err == nil, err
	case *Compare:
		b := ev.bound[e]
		if b.cmp == nil {
			return b.val, nil
		}
		segs, err := splitPath(b.cmp.Path, b.cmp.PathPos)
		if err != nil {
			return false, err
		}
		return ev.at(ev.env.root(), rec, b.cmp, segs, b.cmp.PathPos, b.cmp.Op)
	}
	return false, fmt.Errorf("query: unknown filter node %T", e)
}

// at evaluates e with the operator op for the path segs in the record rec
// of the scope's collection, as compiler.at compiles it.
func (ev *evaluator) at(s scope, rec *schema.Record, e *Compare, segs []string, pos int, op Op) (bool, error) {
	t, err := ev.env.resolve(s, segs, pos)
	if err != nil {
		return false, err
	}
	switch t.kind {
	case tRelation:
		return ev.relation(s, rec, e, t, pos+len(segs[0])+1, op)
	case tJSON:
		var root any = map[string]any(rec.Values)
		if s.coll.Type != schema.Document {
			// SQLite reads the first of keys written twice, PostgreSQL the last.
			if root, err = jsonGo(rec.Values[t.field.Name], ev.env.Dialect == sqldb.SQLite); err != nil {
				return false, fmt.Errorf("query: field %q of record %q: %w", t.field.Name, rec.ID, err)
			}
		}
		return evalValue(t, jsonAt(ev.env.Dialect, root, t.jpath), e, op)
	}
	var v any
	switch t.name {
	case schema.FieldID:
		v = rec.ID
	case schema.FieldCreated:
		v = rec.Created
	case schema.FieldUpdated:
		v = rec.Updated
	default:
		v = rec.Values[t.name]
	}
	return evalValue(t, v, e, op)
}

// relation evaluates a comparison through a relation field: it holds when
// a related record satisfies the positive form of op, negated where op is
// a negation, as compiler.relation compiles it.
func (ev *evaluator) relation(s scope, rec *schema.Record, e *Compare, t target, pos int, op Op) (bool, error) {
	rel := ev.env.Lookup(t.field.Collection) // the compiler found it
	var ids []string
	switch v := rec.Values[t.name].(type) {
	case string:
		ids = []string{v}
	case nil:
	default:
		var err error
		if ids, err = stringList(v); err != nil {
			return false, fmt.Errorf("query: field %q of record %q: %w", t.name, rec.ID, err)
		}
	}
	pop, neg := positive(e, op)
	for _, id := range ids {
		r, err := ev.get(rel.Name, id)
		if err != nil {
			return false, err
		}
		if r == nil {
			continue
		}
		ok, err := ev.at(scope{coll: rel, hops: s.hops + 1}, r, e, t.rest, pos, pop)
		if err != nil {
			return false, err
		}
		if ok {
			return !neg, nil
		}
	}
	return neg, nil
}

func (ev *evaluator) get(coll, id string) (*schema.Record, error) {
	key := [2]string{coll, id}
	if r, ok := ev.seen[key]; ok {
		return r, nil
	}
	var r *schema.Record
	if ev.fetch != nil {
		var err error
		if r, err = ev.fetch(ev.ctx, coll, id); err != nil {
			return nil, fmt.Errorf("query: fetch %s %s: %w", coll, id, err)
		}
	}
	if r != nil && r.ID != id {
		r = nil // the database would not find it under this id
	}
	ev.seen[key] = r
	return r, nil
}

// evalValue evaluates e with the operator op on v, the value of the
// target t (not a relation): a Go value as schema.Values holds it, or for
// a JSON target, the decoded JSON value, nil where the path reaches
// nothing.
func evalValue(t target, v any, e *Compare, op Op) (bool, error) {
	switch t.kind {
	case tList:
		list, err := stringList(v)
		if err != nil {
			return false, fmt.Errorf("query: %s: %w", t.what(), err)
		}
		return evalList(list, e, op), nil
	case tJSON:
		return evalJSON(v, e, op), nil
	}
	return evalColumn(t, v, e, op)
}

// evalColumn is compiler.column in Go.
func evalColumn(t target, v any, e *Compare, op Op) (bool, error) {
	lit := e.Values[0]
	if lit.Kind == KindNull {
		return (v == nil) == (op == Eq), nil
	}
	if v == nil {
		return op == Neq || op == NotContains || op == NotIn, nil
	}
	switch op {
	case Contains, NotContains:
		s, ok := v.(string)
		if !ok {
			return false, fmt.Errorf("query: %s holds %T, not text", t.what(), v)
		}
		return containsFold(s, lit.Str) == (op == Contains), nil
	case In, NotIn:
		for _, l := range e.Values {
			c, err := compareTo(t, v, l)
			if err != nil {
				return false, err
			}
			if c == 0 {
				return op == In, nil
			}
		}
		return op == NotIn, nil
	}
	c, err := compareTo(t, v, lit)
	if err != nil {
		return false, err
	}
	return holds(c, op), nil
}

// holds reports whether op holds of two values that compare as c does.
func holds(c int, op Op) bool {
	switch op {
	case Eq:
		return c == 0
	case Neq:
		return c != 0
	case Gt:
		return c > 0
	case Gte:
		return c >= 0
	case Lt:
		return c < 0
	}
	return c <= 0
}

// compareTo compares the value v of a column of t's type with a literal
// of the kind the compiler accepts for it; bools are 0 (equal) or 1.
func compareTo(t target, v any, lit Literal) (int, error) {
	bad := func() (int, error) { return 0, fmt.Errorf("query: %s holds %T", t.what(), v) }
	switch t.typ {
	case schema.Number:
		f, err := toFloat(v)
		if err != nil {
			return bad()
		}
		return cmpFloat(f, lit.Num), nil
	case schema.Bool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		if b == lit.Bool {
			return 0, nil
		}
		return 1, nil
	case schema.DateTime:
		tm, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		want, err := schema.ParseTime(lit.Str)
		if err != nil {
			return 0, err
		}
		return tm.Compare(want), nil
	}
	s, ok := v.(string)
	if !ok {
		return bad()
	}
	return strings.Compare(s, lit.Str), nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// evalList is compiler.list in Go; an empty list is null.
func evalList(list []string, e *Compare, op Op) bool {
	if e.Values[0].Kind == KindNull {
		return (len(list) == 0) == (op == Eq)
	}
	has := false
	for _, l := range e.Values {
		for _, s := range list {
			has = has || s == l.Str
		}
	}
	return has == (op == Contains || op == In)
}

// containsFold reports whether s contains sub, ignoring the case of ASCII
// letters, as LIKE and ILIKE do in SQLite and under the C locale.
func containsFold(s, sub string) bool {
	return strings.Contains(foldASCII(s), foldASCII(sub))
}

func foldASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// stringList reads a list value: []string, or []any of strings.
func stringList(v any) ([]string, error) {
	switch l := v.(type) {
	case nil:
		return nil, nil
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("list holds %T", x)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("holds %T, not a list", v)
}
