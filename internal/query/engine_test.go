package query

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// querier is what the tests run statements on: a *sql.DB or a *sql.Conn.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// engine is a database loaded with the fixture collections.
type engine struct {
	d  sqldb.Dialect
	db querier
}

// openSQLite returns an engine on a fresh SQLite file in dir, loaded
// with the fixture.
func openSQLite(tb testing.TB, dir string) *engine {
	tb.Helper()
	e := emptySQLite(tb, dir)
	e.load(tb)
	return e
}

// emptySQLite returns an engine on a fresh SQLite file in dir.
func emptySQLite(tb testing.TB, dir string) *engine {
	tb.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "query.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return &engine{d: sqldb.SQLite, db: db}
}

// openPostgres returns an engine on a throw-away schema of the database at
// STRATA_TEST_POSTGRES_URL, loaded with the fixture, or skips the test
// when it is not set.
func openPostgres(tb testing.TB) *engine {
	tb.Helper()
	e := emptyPostgres(tb)
	e.load(tb)
	return e
}

// emptyPostgres returns an engine on an empty throw-away schema, or skips
// the test when STRATA_TEST_POSTGRES_URL is not set.
func emptyPostgres(tb testing.TB) *engine {
	tb.Helper()
	url := os.Getenv("STRATA_TEST_POSTGRES_URL")
	if url == "" {
		tb.Skip("STRATA_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "q_" + hex.EncodeToString(rnd[:])
	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := conn.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", name, err)
		}
		conn.Close()
	})
	// JIT compilation spends seconds on a filter with many relation
	// subqueries, whose estimated cost soars on tiny unanalyzed tables;
	// servers of short queries turn it off.
	if _, err := conn.ExecContext(ctx, "SET search_path TO "+name+"; SET jit = off"); err != nil {
		tb.Fatal(err)
	}
	return &engine{d: sqldb.Postgres, db: conn}
}

// row is a record of the fixture: id, created and the fields' values as
// schema.Values holds them.
type row map[string]any

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func day(s string) time.Time {
	t, err := schema.ParseTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// fixture holds the rows of each collection, in insertion order.
func fixture() map[string][]row {
	return map[string][]row{
		"teams": {
			{"id": "t1", "name": "red"},
			{"id": "t2", "name": "blue"},
		},
		"users": {
			{"id": "u1", "name": "Ann", "age": 30.0, "team": "t1", "friends": []string{"u2"}},
			{"id": "u2", "name": "bob", "team": "t2", "friends": []string{}},
			{"id": "u3", "name": "Cy", "age": 41.0, "friends": []string{"u1", "u2"}},
			{"id": "u4", "age": 5.0, "team": "t9"},
		},
		"posts": {
			{"id": "p01", "title": "Go in practice", "views": 10.0, "done": true, "published": day("2026-01-05"),
				"status": "live", "tags": []string{"go", "sql"}, "author": "u1", "authors": []string{"u1", "u2"},
				"meta": raw(`{"n":1,"a":{"b":"x"},"tags":["x","y"],"flag":true}`), "site": "https://a.example", "contact": "ann@example.com"},
			{"id": "p02", "title": "SQL 100% explained", "views": 250.5, "done": false, "published": day("2026-02-01T12:00:00.5Z"),
				"status": "draft", "tags": []string{"sql"}, "author": "u2", "authors": []string{"u3"},
				"meta": raw(`{"n":2.5,"tags":"extra"}`)},
			{"id": "p03", "title": "web_dev notes", "tags": []string{}, "authors": []string{}, "created": t0.Add(48 * time.Hour)},
			{"id": "p04", "title": "GOLANG tips", "views": 0.0, "done": false, "published": day("2025-12-31T23:59:59.999Z"),
				"status": "archived", "tags": []string{"go", "web"}, "author": "u3", "authors": []string{"u1"},
				"meta": raw(`{"n":"7","flag":false,"tags":[1,2,"x"]}`), "created": t0.Add(48 * time.Hour)},
			{"id": "p05", "views": -3.0, "done": true, "published": day("2026-01-05"), "status": "live",
				"author": "u404", "meta": raw(`{"n":null,"a":{"b":2}}`)},
			{"id": "p06", "title": `it's a "quote"`, "views": 10.0, "done": true, "published": day("2026-03-01"),
				"status": "draft", "tags": []string{"a%b"}, "author": "u4", "authors": []string{"u4", "u2"}, "meta": raw(`[1,2,3]`)},
			{"id": "p07", "title": `C:\path\_x`, "views": 1e6, "done": false, "published": day("2026-01-10"), "status": "live",
				"tags": []string{"web"}, "author": "u1",
				"meta": raw(`{"list":["z","q"],"nested":{"deep":{"k":"v"}},"ARR":[["x"]]}`)},
			{"id": "p08", "title": "Ünïcode café", "views": 5.0, "published": day("2026-01-05"), "tags": []string{"go"},
				"authors": []string{"u3", "u404"}, "meta": raw(`"just a string"`)},
		},
		"docs": {
			{"id": "d1", "data": `{"title":"alpha","score":3,"tags":["a","b"],"meta":{"a":{"b":1}},"flag":true}`},
			{"id": "d2", "data": `{"title":"Beta","score":"high","tags":[],"meta":{"a":{"b":"1"}}}`},
			{"id": "d3", "data": `{"title":"gamma","score":null,"flag":false}`},
			{"id": "d4", "data": `{"score":10.5,"tags":["b"],"meta":{"a":null}}`},
			{"id": "d5", "data": `{"title":"delta","score":3,"list":[{"x":1}],"n":{"0":"zero"}}`},
			{"id": "d6", "data": `{}`},
		},
	}
}

// columnType follows the storage layout of record tables.
func columnType(d sqldb.Dialect, f *schema.Field) string {
	pg := d == sqldb.Postgres
	switch {
	case f.IsList() || f.Type == schema.JSON:
		return map[bool]string{true: "JSONB", false: "TEXT"}[pg]
	case f.Type == schema.Number:
		return map[bool]string{true: "DOUBLE PRECISION", false: "REAL"}[pg]
	case f.Type == schema.Bool:
		return map[bool]string{true: "BOOLEAN", false: "INTEGER"}[pg]
	case f.Type == schema.DateTime:
		return map[bool]string{true: "TIMESTAMPTZ", false: "TEXT"}[pg]
	}
	return "TEXT"
}

// encode turns a fixture value into a bind value for its column.
func encode(d sqldb.Dialect, v any) any {
	switch v := v.(type) {
	case time.Time:
		if d == sqldb.Postgres {
			return v
		}
		return v.UTC().Format(schema.TimeLayout)
	case []string:
		b, _ := json.Marshal(v)
		return string(b)
	case json.RawMessage:
		return string(v)
	}
	return v
}

func (e *engine) load(tb testing.TB) {
	tb.Helper()
	e.loadRows(tb, testCollections(), []string{"teams", "users", "posts", "docs"}, fixture())
}

// loadRows creates the tables of the named collections of cs, in order,
// and inserts their rows, setting created (where it is missing) and
// updated in each row as they are stored.
func (e *engine) loadRows(tb testing.TB, cs map[string]*schema.Collection, order []string, rows map[string][]row) {
	tb.Helper()
	ctx := context.Background()
	d := e.d
	timeType := columnType(d, &schema.Field{Type: schema.DateTime})
	stamp(rows)
	for _, name := range order {
		c := cs[name]
		cols := []string{`"id" TEXT PRIMARY KEY NOT NULL`, `"created" ` + timeType + ` NOT NULL`, `"updated" ` + timeType + ` NOT NULL`}
		names := []string{"id", "created", "updated"}
		if c.Type == schema.Document {
			cols = append(cols, `"data" `+columnType(d, &schema.Field{Type: schema.JSON})+` NOT NULL`)
			names = append(names, "data")
		}
		for _, f := range c.Fields {
			cols = append(cols, d.Quote(f.Name)+" "+columnType(d, f))
			names = append(names, f.Name)
		}
		if _, err := e.db.ExecContext(ctx, "CREATE TABLE "+d.Quote(name)+" ("+strings.Join(cols, ", ")+")"); err != nil {
			tb.Fatalf("create %s: %v", name, err)
		}
		for _, r := range rows[name] {
			a := &sqldb.Args{Dialect: d}
			quoted, ph := make([]string, len(names)), make([]string, len(names))
			for j, n := range names {
				quoted[j], ph[j] = d.Quote(n), a.Add(encode(d, r[n]))
			}
			stmt := "INSERT INTO " + d.Quote(name) + " (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ")"
			if _, err := e.db.ExecContext(ctx, stmt, a.Values...); err != nil {
				tb.Fatalf("insert into %s: %v", name, err)
			}
		}
	}
}

// stamp sets created, where it is missing, and updated in every row, as
// they are stored, and returns rows.
func stamp(rows map[string][]row) map[string][]row {
	for _, rs := range rows {
		for i, r := range rs {
			if r["created"] == nil {
				r["created"] = t0.Add(time.Duration(i) * time.Hour)
			}
			r["updated"] = r["created"].(time.Time).Add(time.Minute)
		}
	}
	return rows
}

// ids runs SELECT id with the filter and order and returns the ids in
// order, and the key values of each row when keys are given.
func (e *engine) ids(tb testing.TB, coll, where string, args *sqldb.Args, keys []OrderKey, limit int) ([]string, [][]any) {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`SELECT r."id"`)
	for _, k := range keys {
		b.WriteString(", " + k.SQL)
	}
	b.WriteString(" FROM " + e.d.Quote(coll) + " r")
	if where != "" {
		b.WriteString(" WHERE " + where)
	}
	if len(keys) > 0 {
		b.WriteString(" ORDER BY " + OrderBy(keys))
	} else {
		b.WriteString(` ORDER BY r."id"`)
	}
	if limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	rows, err := e.db.QueryContext(context.Background(), b.String(), args.Values...)
	if err != nil {
		tb.Fatalf("%s\nargs %#v\n%v", b.String(), args.Values, err)
	}
	defer rows.Close()
	var ids []string
	var vals [][]any
	for rows.Next() {
		dest := make([]any, 1+len(keys))
		for i := range dest {
			dest[i] = new(any)
		}
		if err := rows.Scan(dest...); err != nil {
			tb.Fatal(err)
		}
		id, _ := (*dest[0].(*any)).(string)
		ids = append(ids, id)
		kv := make([]any, len(keys))
		for i := range kv {
			v := *dest[1+i].(*any)
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			kv[i] = v
		}
		vals = append(vals, kv)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids, vals
}

// roundTrip sends cursor values through encoding/json as a client's cursor
// does: numbers come back as float64, times as RFC 3339 strings.
func roundTrip(tb testing.TB, vals []any) []any {
	tb.Helper()
	b, err := json.Marshal(vals)
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var out []any
	if err := dec.Decode(&out); err != nil {
		tb.Fatal(err)
	}
	for i, v := range out {
		if n, ok := v.(json.Number); ok {
			f, err := n.Float64()
			if err != nil {
				tb.Fatal(err)
			}
			out[i] = f
		}
	}
	return out
}
