package query

import (
	"encoding/json"
	"strings"

	"github.com/strata-dev/strata/internal/sqldb"
)

// JSON values are reached with the path segments inlined into the SQL as
// string literals. splitPath has checked every segment against segmentRE
// (letters, digits and _), so they hold no quote of any kind. A segment of
// digits only is an array index.

func isIndex(seg string) bool {
	for i := 0; i < len(seg); i++ {
		if !isDigit(seg[i]) {
			return false
		}
	}
	return true
}

// sqlitePath writes an SQLite JSON path literal: '$."a"."b"[0]'.
func sqlitePath(segs []string) string {
	var b strings.Builder
	b.WriteString("'$")
	for _, s := range segs {
		if isIndex(s) {
			b.WriteString("[" + s + "]")
		} else {
			b.WriteString(`."` + s + `"`)
		}
	}
	b.WriteString("'")
	return b.String()
}

// jsonExpr is the SQL for the JSON value at t: in SQLite an SQL value
// (NULL for a missing key or JSON null, numbers, text, or JSON text for
// arrays and objects), in PostgreSQL a jsonb (SQL NULL for a missing key).
func jsonExpr(d sqldb.Dialect, t target) string {
	if d == sqldb.Postgres {
		if len(t.jpath) == 0 {
			return t.col
		}
		return "(" + t.col + ` #> '{"` + strings.Join(t.jpath, `","`) + `"}')`
	}
	return "json_extract(" + t.col + ", " + sqlitePath(t.jpath) + ")"
}

// jsonText is a literal's JSON encoding.
func jsonText(lit Literal) string {
	var v any
	switch lit.Kind {
	case KindString:
		v = lit.Str
	case KindNumber:
		v = lit.Num
	case KindBool:
		v = lit.Bool
	}
	b, _ := json.Marshal(v) // strings, finite numbers and bools always encode
	return string(b)
}

// json compiles a comparison on a JSON value. A value of another JSON type
// than the literal's never matches: meta.n > 5 is false where n is a
// string.
func (c *compiler) json(t target, e *Compare, op Op) (cond, error) {
	lit := e.Values[0]
	x := jsonExpr(c.d, t)
	pg := c.d == sqldb.Postgres
	if lit.Kind == KindNull {
		switch {
		case pg && op == Eq:
			return cond{sql: "(" + x + " IS NULL OR " + x + " = 'null'::jsonb)"}, nil
		case pg:
			return cond{sql: "(" + x + " IS NOT NULL AND " + x + " <> 'null'::jsonb)"}, nil
		case op == Eq:
			return cond{sql: x + " IS NULL"}, nil
		}
		return cond{sql: x + " IS NOT NULL"}, nil
	}
	if pop, neg := positive(e, op); neg {
		out, err := c.json(t, e, pop)
		return not(out), err
	}
	for _, v := range e.Values {
		if v.Kind == KindBool && op.ordered() {
			return cond{}, errorf(e.OpPos, "%q compares numbers and strings; %s is a bool", e.Op.String(), v.source())
		}
	}
	switch {
	case op == In && pg:
		ph := make([]string, len(e.Values))
		for i, v := range e.Values {
			ph[i] = c.args.Add(jsonText(v)) + "::jsonb"
		}
		return cond{sql: x + " IN (" + strings.Join(ph, ", ") + ")", nullable: true}, nil
	case op == In:
		parts := make([]string, len(e.Values))
		for i, v := range e.Values {
			parts[i] = c.jsonCompare(t, x, Eq, v)
		}
		return cond{sql: "(" + strings.Join(parts, " OR ") + ")", nullable: true}, nil
	case op == Contains:
		return cond{sql: c.jsonContains(t, x, lit), nullable: true}, nil
	}
	return cond{sql: c.jsonCompare(t, x, op, lit), nullable: true}, nil
}

// jsonCompare compares the JSON value x with lit by =, >, >=, < or <=.
func (c *compiler) jsonCompare(t target, x string, op Op, lit Literal) string {
	if c.d == sqldb.Postgres {
		v := c.args.Add(jsonText(lit)) + "::jsonb"
		if op == Eq {
			return x + " = " + v
		}
		typ := "'string'"
		if lit.Kind == KindNumber {
			typ = "'number'"
		}
		return "(jsonb_typeof(" + x + ") = " + typ + " AND " + x + " " + sqlOps[op] + " " + v + ")"
	}
	ty := "json_type(" + t.col + ", " + sqlitePath(t.jpath) + ")"
	switch lit.Kind {
	case KindBool:
		return ty + " = " + c.args.Add(jsonText(lit))
	case KindNumber:
		return "(" + ty + " IN ('integer', 'real') AND " + x + " " + sqlOps[op] + " " + c.args.Add(lit.Num) + ")"
	}
	return "(" + ty + " = 'text' AND " + x + " " + sqlOps[op] + " " + c.args.Add(lit.Str) + ")"
}

// jsonContains tests whether the JSON value x is an array holding lit or,
// for a string literal, a string containing it.
func (c *compiler) jsonContains(t target, x string, lit Literal) string {
	if c.d == sqldb.Postgres {
		out := "(jsonb_typeof(" + x + ") = 'array' AND " + x + " @> jsonb_build_array(" + c.args.Add(jsonText(lit)) + "::jsonb))"
		if lit.Kind == KindString {
			out = "(" + out + " OR (jsonb_typeof(" + x + ") = 'string' AND (" + x + " #>> '{}') ILIKE " +
				c.args.Add(likePattern(lit.Str)) + ` ESCAPE '\'))`
		}
		return out
	}
	path := sqlitePath(t.jpath)
	ty := "json_type(" + t.col + ", " + path + ")"
	j := c.alias("j")
	var elem string
	switch lit.Kind {
	case KindBool:
		elem = j + ".type = " + c.args.Add(jsonText(lit))
	case KindNumber:
		elem = j + ".type IN ('integer', 'real') AND " + j + ".value = " + c.args.Add(lit.Num)
	default:
		elem = j + ".type = 'text' AND " + j + ".value = " + c.args.Add(lit.Str)
	}
	out := "(" + ty + " = 'array' AND EXISTS (SELECT 1 FROM json_each(" + t.col + ", " + path + ") AS " + j + " WHERE " + elem + "))"
	if lit.Kind == KindString {
		out = "(" + out + " OR (" + ty + " = 'text' AND " + x + " LIKE " + c.args.Add(likePattern(lit.Str)) + ` ESCAPE '\'))`
	}
	return out
}
