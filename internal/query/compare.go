package query

import (
	"strings"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

var sqlOps = [...]string{Eq: "=", Neq: "<>", Gt: ">", Gte: ">=", Lt: "<", Lte: "<="}

// textLike reports whether ~ applies to a column of type t as a substring
// test.
func textLike(t schema.FieldType) bool {
	switch t {
	case schema.Text, schema.Email, schema.URL, schema.Select, schema.Relation:
		return true
	}
	return false
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// likePattern matches any text that contains s.
func likePattern(s string) string { return "%" + likeEscaper.Replace(s) + "%" }

func (c *compiler) like() string {
	if c.d == sqldb.Postgres {
		return " ILIKE "
	}
	return " LIKE "
}

func mismatch(t target, lit Literal, want string) *Error {
	return errorf(lit.Pos, "%s; expected %s, found %s", t.is(), want, lit.source())
}

// value converts a literal into the bind value for a column of t's type.
func (c *compiler) value(t target, lit Literal) (any, error) {
	switch t.typ {
	case schema.Number:
		if lit.Kind != KindNumber {
			return nil, mismatch(t, lit, "a number")
		}
		return lit.Num, nil
	case schema.Bool:
		if lit.Kind != KindBool {
			return nil, mismatch(t, lit, "true or false")
		}
		return lit.Bool, nil
	case schema.DateTime:
		if lit.Kind != KindString {
			return nil, mismatch(t, lit, "a datetime string")
		}
		tm, err := schema.ParseTime(lit.Str)
		if err != nil {
			return nil, errorf(lit.Pos, "%s is not a datetime; %s expects RFC 3339 like '2026-01-02T15:04:05Z' or a date like '2026-01-02'", lit.source(), t.what())
		}
		if c.d == sqldb.Postgres {
			return tm, nil
		}
		return schema.FormatTime(tm), nil
	}
	if lit.Kind != KindString {
		return nil, mismatch(t, lit, "a string")
	}
	return lit.Str, nil
}

// orNull makes a negated condition on a column hold where the column is
// NULL too.
func orNull(t target, sql string) cond {
	if t.notNull {
		return cond{sql: sql}
	}
	return cond{sql: "(" + t.col + " IS NULL OR " + sql + ")"}
}

// column compiles a comparison on a scalar column.
func (c *compiler) column(t target, e *Compare, op Op) (cond, error) {
	lit := e.Values[0]
	if lit.Kind == KindNull {
		if op == Eq {
			return cond{sql: t.col + " IS NULL"}, nil
		}
		return cond{sql: t.col + " IS NOT NULL"}, nil
	}
	switch op {
	case Eq, Neq, Gt, Gte, Lt, Lte:
		if op.ordered() && t.typ == schema.Bool {
			return cond{}, errorf(e.OpPos, "%s; only = and != apply to it, not %q", t.is(), e.Op.String())
		}
		v, err := c.value(t, lit)
		if err != nil {
			return cond{}, err
		}
		sql := t.col + " " + sqlOps[op] + " " + c.args.Add(v)
		if op == Neq {
			return orNull(t, sql), nil
		}
		return cond{sql: sql, nullable: !t.notNull}, nil
	case Contains, NotContains:
		if !textLike(t.typ) {
			return cond{}, errorf(e.OpPos, "%s; %q applies to text, lists and json values", t.is(), e.Op.String())
		}
		if lit.Kind != KindString {
			return cond{}, mismatch(t, lit, "a string")
		}
		sql := t.col + c.like() + c.args.Add(likePattern(lit.Str)) + ` ESCAPE '\'`
		if op == NotContains {
			return orNull(t, "NOT ("+sql+")"), nil
		}
		return cond{sql: sql, nullable: !t.notNull}, nil
	}
	ph := make([]string, len(e.Values))
	for i, lit := range e.Values {
		v, err := c.value(t, lit)
		if err != nil {
			return cond{}, err
		}
		ph[i] = c.args.Add(v)
	}
	if op == NotIn {
		return orNull(t, t.col+" NOT IN ("+strings.Join(ph, ", ")+")"), nil
	}
	return cond{sql: t.col + " IN (" + strings.Join(ph, ", ") + ")", nullable: !t.notNull}, nil
}

// list compiles a comparison on a multiple select or relation: a JSON array
// of strings.
func (c *compiler) list(t target, e *Compare, op Op) (cond, error) {
	if e.Values[0].Kind == KindNull {
		n := "COALESCE(json_array_length(" + t.col + "), 0)"
		if c.d == sqldb.Postgres {
			n = "COALESCE(jsonb_array_length(" + t.col + "), 0)"
		}
		if op == Eq {
			return cond{sql: n + " = 0"}, nil
		}
		return cond{sql: n + " > 0"}, nil
	}
	switch op {
	case Contains, NotContains, In, NotIn:
	default:
		return cond{}, errorf(e.OpPos, "%s is a list; %q does not apply to it: use ~ to test whether it holds a value (%s ~ 'x'), in (...) for any of several values, or = null for empty",
			t.what(), e.Op.String(), t.name)
	}
	ph := make([]string, len(e.Values))
	for i, lit := range e.Values {
		if lit.Kind != KindString {
			return cond{}, errorf(lit.Pos, "%s holds a list of strings; expected a string, found %s", t.what(), lit.source())
		}
		ph[i] = c.args.Add(lit.Str)
	}
	var out cond
	switch {
	case op == In || op == NotIn:
		out = cond{sql: c.anyElement(t.col, func(v string) string { return v + " IN (" + strings.Join(ph, ", ") + ")" })}
	case c.d == sqldb.Postgres:
		out = cond{sql: t.col + " @> jsonb_build_array(" + ph[0] + "::text)", nullable: true}
	default:
		out = cond{sql: c.anyElement(t.col, func(v string) string { return v + " = " + ph[0] })}
	}
	if op == NotContains || op == NotIn {
		return not(out), nil
	}
	return out, nil
}

// anyElement is an EXISTS test over the strings of a JSON array column;
// test writes the condition on one element, given the SQL that names it.
func (c *compiler) anyElement(col string, test func(elem string) string) string {
	j := c.alias("j")
	if c.d == sqldb.Postgres {
		return "EXISTS (SELECT 1 FROM jsonb_array_elements_text(" + col + ") AS " + j + "(v) WHERE " + test(j+".v") + ")"
	}
	return "EXISTS (SELECT 1 FROM json_each(" + col + ") AS " + j + " WHERE " + test(j+".value") + ")"
}
