// Package sqldb holds what the SQL-writing packages share: the dialect of the
// engine behind a *sql.DB and a builder for bind parameters.
package sqldb

import (
	"encoding/json"
	"reflect"
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

// In returns the condition that expr is one of vals, adding them to a
// as one bound value whatever their number: expr = ? for one value, and
// for a list expr = ANY($n) with an array on PostgreSQL, expr IN (SELECT
// value FROM json_each(?)) with a JSON array on SQLite. The statement's
// text stays the same whatever the values and their number, so a prepared
// statement cache serves it; a list of placeholders, IN (?, ?, ...), made
// each length a statement of its own, parsed and planned again. No values
// select nothing.
func In[T ~string | ~int64](a *Args, expr string, vals []T) string {
	if len(vals) == 1 {
		return expr + " = " + a.Add(vals[0])
	}
	list := listValue(vals)
	if a.Dialect == Postgres {
		return expr + " = ANY(" + a.Add(list) + ")"
	}
	b, _ := json.Marshal(list) // a []int64 or []string always encodes
	return expr + " IN (SELECT value FROM json_each(" + a.Add(string(b)) + "))"
}

// listValue returns vals as a []int64 or a []string, which the drivers
// bind as arrays and encoding/json writes as numbers or strings.
func listValue[T ~string | ~int64](vals []T) any {
	if reflect.TypeFor[T]().Kind() == reflect.Int64 {
		out := make([]int64, len(vals))
		for i, v := range vals {
			out[i] = reflect.ValueOf(v).Int()
		}
		return out
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = reflect.ValueOf(v).String()
	}
	return out
}
