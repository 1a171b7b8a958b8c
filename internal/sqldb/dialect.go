// Package sqldb holds what the SQL-writing packages share: the dialect of the
// engine behind a *sql.DB and a builder for bind parameters.
package sqldb

import (
	"strconv"
	"strings"
)

// Dialect names the SQL engine a statement is written for.
type Dialect int

const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// Quote quotes an identifier. Identifiers passed here come from the validated
// schema only; the doubling of quotes is defence in depth, not the guard.
func (d Dialect) Quote(ident string) string {
	return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"`
}

// Args collects bind parameters and writes the matching placeholders.
type Args struct {
	Dialect Dialect
	Values  []any
}

// Add appends v and returns its placeholder: ? for SQLite, $n for PostgreSQL.
func (a *Args) Add(v any) string {
	a.Values = append(a.Values, v)
	if a.Dialect == Postgres {
		return "$" + strconv.Itoa(len(a.Values))
	}
	return "?"
}

// In returns the condition that expr is one of vals, adding them to a:
// expr = ? for one value, expr IN (?, ?, ...) for more. A single value
// keeps the statement's text the same whatever the value, so a prepared
// statement cache can serve it; a list would make each length a statement
// of its own. With no values it gives expr IN ().
func In[T any](a *Args, expr string, vals []T) string {
	if len(vals) == 1 {
		return expr + " = " + a.Add(vals[0])
	}
	var b strings.Builder
	b.WriteString(expr)
	b.WriteString(" IN (")
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Add(v))
	}
	b.WriteByte(')')
	return b.String()
}
