package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// OrderKey is one key of a list's order. SQL is an expression over the
// collection's table that serves both in ORDER BY and in the SELECT list, so
// that the caller can read the key values of a page's last row for the
// cursor that continues after it.
//
// What the SELECT gives back, by key: text for id, text, email, url,
// select and single relation fields; a number for number fields; a bool
// (PostgreSQL) or 0/1 (SQLite) for bool fields; a time.Time (PostgreSQL) or
// TimeLayout text (SQLite) for datetimes; for JSON values, the SQL value of
// json_extract in SQLite and the JSON text (as []byte) in PostgreSQL. After
// accepts each of these back, also after a round trip through encoding/json.
type OrderKey struct {
	Path string
	SQL  string
	Desc bool

	kind     keyKind
	nullable bool // the key may be NULL
	id       bool // the id: ordered as its primary key index is
}

type keyKind int

const (
	kText keyKind = iota
	kNumber
	kBool
	kTime
	kJSON
)

// Order compiles sorts into ORDER BY keys. Ascending keys put NULLs first
// and descending keys put them last, in both dialects, so that a NULL is
// the smallest value. The id is appended as the last key, unless a sort
// names it, so that the order is total: it takes the direction of the last
// sort, or ascending when there is none (ids are time-ordered, so that is
// creation order). Errors in the sorts are *Error values.
//
// Lists and paths through relations cannot be sorted by.
func (env *Env) Order(sorts []Sort) ([]OrderKey, error) {
	if err := env.check(nil, false); err != nil {
		return nil, err
	}
	s := env.root()
	keys := make([]OrderKey, 0, len(sorts)+1)
	seen := map[string]bool{}
	for _, so := range sorts {
		if seen[so.Path] {
			return nil, errorf(so.Pos, "%q appears twice in the sort", so.Path)
		}
		seen[so.Path] = true
		segs, err := splitPath(so.Path, so.Pos)
		if err != nil {
			return nil, err
		}
		t, err := env.resolve(s, segs, so.Pos)
		if err != nil {
			return nil, err
		}
		k := OrderKey{Path: so.Path, Desc: so.Desc}
		switch t.kind {
		case tRelation:
			return nil, errorf(so.Pos, "cannot sort by %q: sorting through a relation is not supported", so.Path)
		case tList:
			return nil, errorf(so.Pos, "cannot sort by %q: it is a list", so.Path)
		case tJSON:
			k.SQL, k.kind, k.nullable = jsonExpr(env.Dialect, t), kJSON, true
		default:
			k.SQL, k.kind, k.nullable, k.id = t.col, keyKindOf(t.typ), !t.notNull, so.Path == schema.FieldID
		}
		keys = append(keys, k)
	}
	if !seen[schema.FieldID] {
		desc := len(keys) > 0 && keys[len(keys)-1].Desc
		keys = append(keys, OrderKey{Path: schema.FieldID, SQL: s.qual + "." + env.Dialect.Quote(schema.FieldID), Desc: desc, id: true})
	}
	return keys, nil
}

func keyKindOf(t schema.FieldType) keyKind {
	switch t {
	case schema.Number:
		return kNumber
	case schema.Bool:
		return kBool
	case schema.DateTime:
		return kTime
	}
	return kText
}

// OrderBy writes the ORDER BY list of keys, without the words ORDER BY:
// `r."created" DESC NULLS LAST, r."id" DESC`. The NULLS clause is written
// for every key but the id, which is never NULL: so the id's order is the
// one its primary key index has in PostgreSQL, and other keys match
// indexes built NULLS FIRST.
func OrderBy(keys []OrderKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		switch {
		case k.id && k.Desc:
			parts[i] = k.SQL + " DESC"
		case k.id:
			parts[i] = k.SQL + " ASC"
		case k.Desc:
			parts[i] = k.SQL + " DESC NULLS LAST"
		default:
			parts[i] = k.SQL + " ASC NULLS FIRST"
		}
	}
	return strings.Join(parts, ", ")
}

// After compiles the condition that selects the rows strictly after the
// row whose key values are last, in the order of keys: the seek method of
// keyset pagination. last[i] is the value read from keys[i].SQL, possibly
// after a round trip through encoding/json. An error means last does not
// fit the keys; on error args is left as it was.
func (env *Env) After(keys []OrderKey, last []any, args *sqldb.Args) (string, error) {
	if err := env.check(args, true); err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", errors.New("query: no order keys")
	}
	if len(last) != len(keys) {
		return "", fmt.Errorf("cursor has %d key values, the order has %d keys", len(last), len(keys))
	}
	vals := make([]any, len(keys))
	simple := true // every key non-null and in one direction: a row comparison
	for i, k := range keys {
		v, err := keyValue(env.Dialect, k, last[i])
		if err != nil {
			return "", fmt.Errorf("cursor key %d (%s): %w", i, k.Path, err)
		}
		vals[i] = v
		simple = simple && !k.nullable && k.Desc == keys[0].Desc
	}
	ph := func(k OrderKey, v any) string {
		p := args.Add(v)
		if k.kind == kJSON && env.Dialect == sqldb.Postgres {
			p += "::jsonb"
		}
		return p
	}
	if simple {
		op := " > "
		if keys[0].Desc {
			op = " < "
		}
		if len(keys) == 1 {
			return keys[0].SQL + op + ph(keys[0], vals[0]), nil
		}
		l, r := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			l[i], r[i] = k.SQL, ph(k, vals[i])
		}
		return "(" + strings.Join(l, ", ") + ")" + op + "(" + strings.Join(r, ", ") + ")", nil
	}
	// (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ..., where "after"
	// follows NULLS FIRST for ascending keys and NULLS LAST for descending
	// ones, and "=" holds between two NULLs.
	// Placeholders are added in the order they are written: SQLite's "?"
	// binds by position.
	eq := func(k OrderKey, v any) string {
		if v == nil {
			return k.SQL + " IS NULL"
		}
		return k.SQL + " = " + ph(k, v)
	}
	// A range on the first key, implied by the OR chain, lets the database
	// seek in an index on that key instead of scanning from the start.
	lead := ""
	if k, v := keys[0], vals[0]; v != nil {
		switch {
		case !k.Desc:
			lead = k.SQL + " >= " + ph(k, v)
		case !k.nullable:
			lead = k.SQL + " <= " + ph(k, v)
		}
	}
	var terms []string
	for i, k := range keys {
		v := vals[i]
		if k.Desc && v == nil {
			continue // nothing sorts after NULL in a descending key
		}
		var conj []string
		for j := range i {
			conj = append(conj, eq(keys[j], vals[j]))
		}
		switch {
		case !k.Desc && v == nil:
			conj = append(conj, k.SQL+" IS NOT NULL")
		case !k.Desc:
			conj = append(conj, k.SQL+" > "+ph(k, v))
		case k.nullable:
			conj = append(conj, "("+k.SQL+" < "+ph(k, v)+" OR "+k.SQL+" IS NULL)")
		default:
			conj = append(conj, k.SQL+" < "+ph(k, v))
		}
		if len(conj) == 1 {
			terms = append(terms, conj[0])
		} else {
			terms = append(terms, "("+strings.Join(conj, " AND ")+")")
		}
	}
	var chain string
	switch len(terms) {
	case 0:
		return "FALSE", nil
	case 1:
		chain = terms[0]
	default:
		chain = "(" + strings.Join(terms, " OR ") + ")"
	}
	if lead != "" {
		return "(" + lead + " AND " + chain + ")", nil
	}
	return chain, nil
}

// keyValue checks a cursor value against its key and converts it into a
// bind value; nil is NULL.
func keyValue(d sqldb.Dialect, k OrderKey, v any) (any, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		if !k.nullable {
			return nil, errors.New("expected a value, found null")
		}
		return nil, nil
	}
	switch k.kind {
	case kText:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("expected a string, found %T", v)
	case kNumber:
		return toFloat(v)
	case kBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		f, err := toFloat(v)
		if err != nil || (f != 0 && f != 1) {
			return nil, fmt.Errorf("expected a bool, found %v", v)
		}
		return f == 1, nil
	case kTime:
		return timeValue(d, v)
	}
	return jsonValue(d, v)
}

func toFloat(v any) (float64, error) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int64:
		f = float64(n)
	case int:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, fmt.Errorf("expected a number, found %q", n)
		}
	default:
		return 0, fmt.Errorf("expected a number, found %T", v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("expected a finite number, found %v", f)
	}
	return f, nil
}

// timeValue takes a datetime as time.Time or RFC 3339 text. SQLite compares
// the stored text, so text that parses is bound as it is.
func timeValue(d sqldb.Dialect, v any) (any, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339Nano, x); err != nil {
			return nil, fmt.Errorf("expected an RFC 3339 datetime, found %q", x)
		}
		if d == sqldb.SQLite {
			return x, nil
		}
	default:
		return nil, fmt.Errorf("expected a datetime, found %T", v)
	}
	if d == sqldb.Postgres {
		return t, nil
	}
	return schema.FormatTime(t), nil
}

// jsonValue takes a JSON key value: in SQLite what json_extract gives, in
// PostgreSQL the JSON text of the jsonb.
func jsonValue(d sqldb.Dialect, v any) (any, error) {
	if d == sqldb.Postgres {
		s, ok := v.(string)
		if !ok || !json.Valid([]byte(s)) || strings.Contains(s, `\u0000`) {
			return nil, fmt.Errorf("expected JSON text, found %T", v)
		}
		return s, nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return x, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
	}
	return toFloat(v)
}
