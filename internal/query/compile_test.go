package query

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

// compileCases are the SQL and args each filter compiles to.
var compileCases = []struct {
	d            sqldb.Dialect
	coll, filter string
	sql, args    string // args as %#v prints them
}{
	{sqldb.SQLite, "posts", "title = 'a'",
		`r."title" = ?`,
		"[]interface {}{\"a\"}"},
	{sqldb.Postgres, "posts", "title = 'a'",
		`r."title" = $1`,
		"[]interface {}{\"a\"}"},
	{sqldb.SQLite, "posts", "title != 'a'",
		`(r."title" IS NULL OR r."title" <> ?)`,
		"[]interface {}{\"a\"}"},
	{sqldb.Postgres, "posts", "title != 'a'",
		`(r."title" IS NULL OR r."title" <> $1)`,
		"[]interface {}{\"a\"}"},
	{sqldb.SQLite, "posts", "views > 1 && done = true",
		`r."views" > ? AND r."done" = ?`,
		"[]interface {}{1, true}"},
	{sqldb.Postgres, "posts", "views > 1 && done = true",
		`r."views" > $1 AND r."done" = $2`,
		"[]interface {}{1, true}"},
	{sqldb.SQLite, "posts", "published >= '2026-01-02'",
		`r."published" >= ?`,
		"[]interface {}{\"2026-01-02T00:00:00.000Z\"}"},
	{sqldb.Postgres, "posts", "published >= '2026-01-02'",
		`r."published" >= $1`,
		"[]interface {}{time.Date(2026, time.January, 2, 0, 0, 0, 0, time.UTC)}"},
	{sqldb.SQLite, "posts", "title ~ 'a%_\\\\b'",
		`r."title" LIKE ? ESCAPE '\'`,
		"[]interface {}{\"%a\\\\%\\\\_\\\\\\\\b%\"}"},
	{sqldb.Postgres, "posts", "title ~ 'a%_\\\\b'",
		`r."title" ILIKE $1 ESCAPE '\'`,
		"[]interface {}{\"%a\\\\%\\\\_\\\\\\\\b%\"}"},
	{sqldb.SQLite, "posts", "title !~ 'x'",
		`(r."title" IS NULL OR NOT (r."title" LIKE ? ESCAPE '\'))`,
		"[]interface {}{\"%x%\"}"},
	{sqldb.Postgres, "posts", "title !~ 'x'",
		`(r."title" IS NULL OR NOT (r."title" ILIKE $1 ESCAPE '\'))`,
		"[]interface {}{\"%x%\"}"},
	{sqldb.SQLite, "posts", "status not in ('draft', 'live')",
		`(r."status" IS NULL OR r."status" NOT IN (?, ?))`,
		"[]interface {}{\"draft\", \"live\"}"},
	{sqldb.Postgres, "posts", "status not in ('draft', 'live')",
		`(r."status" IS NULL OR r."status" NOT IN ($1, $2))`,
		"[]interface {}{\"draft\", \"live\"}"},
	{sqldb.SQLite, "posts", "title = null",
		`r."title" IS NULL`,
		"[]interface {}(nil)"},
	{sqldb.Postgres, "posts", "title = null",
		`r."title" IS NULL`,
		"[]interface {}(nil)"},
	{sqldb.SQLite, "posts", "id != 'x'",
		`r."id" <> ?`,
		"[]interface {}{\"x\"}"},
	{sqldb.Postgres, "posts", "id != 'x'",
		`r."id" <> $1`,
		"[]interface {}{\"x\"}"},
	{sqldb.SQLite, "posts", "tags ~ 'go'",
		`EXISTS (SELECT 1 FROM json_each(r."tags") AS j1 WHERE j1.value = ?)`,
		"[]interface {}{\"go\"}"},
	{sqldb.Postgres, "posts", "tags ~ 'go'",
		`r."tags" @> jsonb_build_array($1::text)`,
		"[]interface {}{\"go\"}"},
	{sqldb.SQLite, "posts", "tags !~ 'go'",
		`NOT (EXISTS (SELECT 1 FROM json_each(r."tags") AS j1 WHERE j1.value = ?))`,
		"[]interface {}{\"go\"}"},
	{sqldb.Postgres, "posts", "tags !~ 'go'",
		`NOT COALESCE(r."tags" @> jsonb_build_array($1::text), FALSE)`,
		"[]interface {}{\"go\"}"},
	{sqldb.SQLite, "posts", "tags in ('go', 'sql')",
		`EXISTS (SELECT 1 FROM json_each(r."tags") AS j1 WHERE j1.value IN (?, ?))`,
		"[]interface {}{\"go\", \"sql\"}"},
	{sqldb.Postgres, "posts", "tags in ('go', 'sql')",
		`EXISTS (SELECT 1 FROM jsonb_array_elements_text(r."tags") AS j1(v) WHERE j1.v IN ($1, $2))`,
		"[]interface {}{\"go\", \"sql\"}"},
	{sqldb.SQLite, "posts", "tags = null",
		`COALESCE(json_array_length(r."tags"), 0) = 0`,
		"[]interface {}(nil)"},
	{sqldb.Postgres, "posts", "tags = null",
		`COALESCE(jsonb_array_length(r."tags"), 0) = 0`,
		"[]interface {}(nil)"},
	{sqldb.SQLite, "posts", "author.name = 'Ann'",
		`r."author" IN (SELECT a1."id" FROM "users" a1 WHERE a1."name" = ?)`,
		"[]interface {}{\"Ann\"}"},
	{sqldb.Postgres, "posts", "author.name = 'Ann'",
		`r."author" IN (SELECT a1."id" FROM "users" a1 WHERE a1."name" = $1)`,
		"[]interface {}{\"Ann\"}"},
	{sqldb.SQLite, "posts", "author.name != 'Ann'",
		`NOT COALESCE(r."author" IN (SELECT a1."id" FROM "users" a1 WHERE a1."name" = ?), FALSE)`,
		"[]interface {}{\"Ann\"}"},
	{sqldb.Postgres, "posts", "author.name != 'Ann'",
		`NOT COALESCE(r."author" IN (SELECT a1."id" FROM "users" a1 WHERE a1."name" = $1), FALSE)`,
		"[]interface {}{\"Ann\"}"},
	{sqldb.SQLite, "posts", "authors.team.name = 'red'",
		`EXISTS (SELECT 1 FROM "users" a1 WHERE a1."id" IN (SELECT j3.value FROM json_each(r."authors") AS j3) AND a1."team" IN (SELECT a2."id" FROM "teams" a2 WHERE a2."name" = ?))`,
		"[]interface {}{\"red\"}"},
	{sqldb.Postgres, "posts", "authors.team.name = 'red'",
		`EXISTS (SELECT 1 FROM "users" a1 WHERE a1."id" IN (SELECT j3.v FROM jsonb_array_elements_text(r."authors") AS j3(v)) AND a1."team" IN (SELECT a2."id" FROM "teams" a2 WHERE a2."name" = $1))`,
		"[]interface {}{\"red\"}"},
	{sqldb.SQLite, "posts", "meta.a.b = 1",
		`(json_type(r."meta", '$."a"."b"') IN ('integer', 'real') AND json_extract(r."meta", '$."a"."b"') = ?)`,
		"[]interface {}{1}"},
	{sqldb.Postgres, "posts", "meta.a.b = 1",
		`(r."meta" #> '{"a","b"}') = $1::jsonb`,
		"[]interface {}{\"1\"}"},
	{sqldb.SQLite, "posts", "meta.a > 'x'",
		`(json_type(r."meta", '$."a"') = 'text' AND json_extract(r."meta", '$."a"') > ?)`,
		"[]interface {}{\"x\"}"},
	{sqldb.Postgres, "posts", "meta.a > 'x'",
		`(jsonb_typeof((r."meta" #> '{"a"}')) = 'string' AND (r."meta" #> '{"a"}') > $1::jsonb)`,
		"[]interface {}{\"\\\"x\\\"\"}"},
	{sqldb.SQLite, "posts", "meta.flag = true",
		`json_type(r."meta", '$."flag"') = ?`,
		"[]interface {}{\"true\"}"},
	{sqldb.Postgres, "posts", "meta.flag = true",
		`(r."meta" #> '{"flag"}') = $1::jsonb`,
		"[]interface {}{\"true\"}"},
	{sqldb.SQLite, "posts", "meta.tags ~ 'x'",
		`((json_type(r."meta", '$."tags"') = 'array' AND EXISTS (SELECT 1 FROM json_each(r."meta", '$."tags"') AS j1 WHERE j1.type = 'text' AND j1.value = ?)) OR (json_type(r."meta", '$."tags"') = 'text' AND json_extract(r."meta", '$."tags"') LIKE ? ESCAPE '\'))`,
		"[]interface {}{\"x\", \"%x%\"}"},
	{sqldb.Postgres, "posts", "meta.tags ~ 'x'",
		`((jsonb_typeof((r."meta" #> '{"tags"}')) = 'array' AND (r."meta" #> '{"tags"}') @> jsonb_build_array($1::jsonb)) OR (jsonb_typeof((r."meta" #> '{"tags"}')) = 'string' AND ((r."meta" #> '{"tags"}') #>> '{}') ILIKE $2 ESCAPE '\'))`,
		"[]interface {}{\"\\\"x\\\"\", \"%x%\"}"},
	{sqldb.SQLite, "posts", "meta.n = null",
		`json_extract(r."meta", '$."n"') IS NULL`,
		"[]interface {}(nil)"},
	{sqldb.Postgres, "posts", "meta.n = null",
		`((r."meta" #> '{"n"}') IS NULL OR (r."meta" #> '{"n"}') = 'null'::jsonb)`,
		"[]interface {}(nil)"},
	{sqldb.SQLite, "posts", "meta.list.0 in (1, 'x')",
		`((json_type(r."meta", '$."list"[0]') IN ('integer', 'real') AND json_extract(r."meta", '$."list"[0]') = ?) OR (json_type(r."meta", '$."list"[0]') = 'text' AND json_extract(r."meta", '$."list"[0]') = ?))`,
		"[]interface {}{1, \"x\"}"},
	{sqldb.Postgres, "posts", "meta.list.0 in (1, 'x')",
		`(r."meta" #> '{"list","0"}') IN ($1::jsonb, $2::jsonb)`,
		"[]interface {}{\"1\", \"\\\"x\\\"\"}"},
	{sqldb.SQLite, "docs", "a.b != 2",
		`NOT COALESCE((json_type(r."data", '$."a"."b"') IN ('integer', 'real') AND json_extract(r."data", '$."a"."b"') = ?), FALSE)`,
		"[]interface {}{2}"},
	{sqldb.Postgres, "docs", "a.b != 2",
		`NOT COALESCE((r."data" #> '{"a","b"}') = $1::jsonb, FALSE)`,
		"[]interface {}{\"2\"}"},
	{sqldb.SQLite, "posts", "!(title = 'a' || views > 2) && !(done = null)",
		`NOT COALESCE(r."title" = ? OR r."views" > ?, FALSE) AND NOT (r."done" IS NULL)`,
		"[]interface {}{\"a\", 2}"},
	{sqldb.Postgres, "posts", "!(title = 'a' || views > 2) && !(done = null)",
		`NOT COALESCE(r."title" = $1 OR r."views" > $2, FALSE) AND NOT (r."done" IS NULL)`,
		"[]interface {}{\"a\", 2}"},
	{sqldb.SQLite, "posts", "views = 1 || views = 2 && done = true",
		`(r."views" = ? OR (r."views" = ? AND r."done" = ?))`,
		"[]interface {}{1, 2, true}"},
	{sqldb.Postgres, "posts", "views = 1 || views = 2 && done = true",
		`(r."views" = $1 OR (r."views" = $2 AND r."done" = $3))`,
		"[]interface {}{1, 2, true}"},
	{sqldb.SQLite, "posts", "(views = 1 || views = 2) && done = true",
		`(r."views" = ? OR r."views" = ?) AND r."done" = ?`,
		"[]interface {}{1, 2, true}"},
	{sqldb.Postgres, "posts", "(views = 1 || views = 2) && done = true",
		`(r."views" = $1 OR r."views" = $2) AND r."done" = $3`,
		"[]interface {}{1, 2, true}"},
}

func TestCompile(t *testing.T) {
	for _, tt := range compileCases {
		t.Run(tt.d.String()+": "+tt.filter, func(t *testing.T) {
			e, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			args := &sqldb.Args{Dialect: tt.d}
			got, err := testEnv(tt.d, tt.coll).Where(e, args)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.sql {
				t.Errorf("sql\n got: %s\nwant: %s", got, tt.sql)
			}
			if a := fmt.Sprintf("%#v", args.Values); a != tt.args {
				t.Errorf("args\n got: %s\nwant: %s", a, tt.args)
			}
		})
	}
}

func TestCompileNil(t *testing.T) {
	args := &sqldb.Args{Dialect: sqldb.SQLite}
	if s, err := testEnv(sqldb.SQLite, "posts").Where(nil, args); s != "" || err != nil || len(args.Values) != 0 {
		t.Errorf("Where(nil) = %q, %v", s, err)
	}
	e, _ := Parse("title = 'a'")
	if _, err := testEnv(sqldb.SQLite, "posts").Where(e, &sqldb.Args{Dialect: sqldb.Postgres}); err == nil {
		t.Error("Where with args of another dialect: no error")
	}
	if _, err := (&Env{Dialect: sqldb.SQLite}).Where(e, args); err == nil {
		t.Error("Where without a collection: no error")
	}
}

func TestCompileAlias(t *testing.T) {
	env := testEnv(sqldb.SQLite, "posts")
	env.Alias = ""
	e, _ := Parse("title = 'a' && tags ~ 'go'")
	got, err := env.Where(e, &sqldb.Args{Dialect: sqldb.SQLite})
	want := `"posts"."title" = ? AND EXISTS (SELECT 1 FROM json_each("posts"."tags") AS j1 WHERE j1.value = ?)`
	if err != nil || got != want {
		t.Errorf("got %s, %v\nwant %s", got, err, want)
	}
	// Subquery aliases never take the outer one.
	env.Alias = "a1"
	e, _ = Parse("author.name = 'x'")
	got, _ = env.Where(e, &sqldb.Args{Dialect: sqldb.SQLite})
	want = `a1."author" IN (SELECT a2."id" FROM "users" a2 WHERE a2."name" = ?)`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		coll, filter string
		pos          int
		want         string
	}{
		{"posts", "nope = 1", 0, `unknown field "nope" in collection "posts"`},
		{"posts", "views = 'x'", 8, `field "views" is a number field; expected a number, found 'x'`},
		{"posts", "title = 1", 8, `field "title" is a text field; expected a string, found 1`},
		{"posts", "status = true", 9, `field "status" is a select field; expected a string, found true`},
		{"posts", "site = 1", 7, `field "site" is a url field; expected a string, found 1`},
		{"posts", "contact ~ 1", 10, `field "contact" is an email field; expected a string, found 1`},
		{"posts", "done > true", 5, `field "done" is a bool field; only = and != apply to it, not ">"`},
		{"posts", "done = 1", 7, `field "done" is a bool field; expected true or false, found 1`},
		{"posts", "done ~ 'x'", 5, `field "done" is a bool field; "~" applies to text, lists and json values`},
		{"posts", "views !~ 1", 6, `field "views" is a number field; "!~" applies to text, lists and json values`},
		{"posts", "published = 'yesterday'", 12, `'yesterday' is not a datetime; field "published" expects RFC 3339 like '2026-01-02T15:04:05Z' or a date like '2026-01-02'`},
		{"posts", "published = 5", 12, `field "published" is a datetime field; expected a datetime string, found 5`},
		{"posts", "created > 'soon'", 10, `'soon' is not a datetime; field "created" expects RFC 3339 like '2026-01-02T15:04:05Z' or a date like '2026-01-02'`},
		{"posts", "published ~ '2026'", 10, `field "published" is a datetime field; "~" applies to text, lists and json values`},
		{"posts", "title > null", 8, `null is compared only with = and !=; found ">"`},
		{"posts", "title ~ null", 8, `null is compared only with = and !=; found "~"`},
		{"posts", "title in ('a', null)", 15, `null is compared only with = and !=; found "in"`},
		{"posts", "status in ('draft', 1)", 20, `field "status" is a select field; expected a string, found 1`},
		{"posts", "tags = 'go'", 5, `field "tags" is a list; "=" does not apply to it: use ~ to test whether it holds a value (tags ~ 'x'), in (...) for any of several values, or = null for empty`},
		{"posts", "tags > 'go'", 5, `field "tags" is a list; ">" does not apply to it: use ~ to test whether it holds a value (tags ~ 'x'), in (...) for any of several values, or = null for empty`},
		{"posts", "tags ~ 1", 7, `field "tags" holds a list of strings; expected a string, found 1`},
		{"posts", "authors in ('u1', 2)", 18, `field "authors" holds a list of strings; expected a string, found 2`},
		{"posts", "title.x = 1", 5, `field "title" is a text field and has no nested fields; only json and relation fields do`},
		{"posts", "id.x = 1", 2, `"id" has no nested fields`},
		{"posts", "author.nope = 1", 7, `unknown field "nope" in collection "users"`},
		{"posts", "author.team.nope = 1", 12, `unknown field "nope" in collection "teams"`},
		{"posts", "author.name = 1", 14, `field "name" is a text field; expected a string, found 1`},
		{"posts", "authors.friends.age > 'x'", 22, `field "age" is a number field; expected a number, found 'x'`},
		{"posts", "orphan.name = 'x'", 0, `relation field "orphan" points to unknown collection "nowhere"`},
		{"posts", "author.friends.friends.friends.name = 'x'", 0, `path "author.friends.friends.friends.name" passes through more than 3 relations`},
		{"posts", "meta.a > true", 7, `">" compares numbers and strings; true is a bool`},
		{"posts", "meta.a in (1, null)", 14, `null is compared only with = and !=; found "in"`},
		{"docs", "a.b <= false", 4, `"<=" compares numbers and strings; false is a bool`},
		{"docs", "created.x = 1", 7, `"created" has no nested fields`},
		{"posts", "title = 'a' && (views = 1 || nope ~ 'x')", 29, `unknown field "nope" in collection "posts"`},
		{"posts", "!(views = 'ten')", 10, `field "views" is a number field; expected a number, found 'ten'`},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			e, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
				args := &sqldb.Args{Dialect: d}
				args.Add("before")
				s, err := testEnv(d, tt.coll).Where(e, args)
				var qe *Error
				if !errors.As(err, &qe) {
					t.Fatalf("%s: Where = %s, %v; want an *Error", d, s, err)
				}
				if qe.Pos != tt.pos || qe.Msg != tt.want {
					t.Errorf("%s:\n got: at %d: %s\nwant: at %d: %s", d, qe.Pos, qe.Msg, tt.pos, tt.want)
				}
				if len(args.Values) != 1 {
					t.Errorf("%s: a failed Where left args %v", d, args.Values)
				}
			}
		})
	}
}

func TestCompileWithoutLookup(t *testing.T) {
	env := testEnv(sqldb.SQLite, "posts")
	env.Lookup = nil
	e, _ := Parse("author.name = 'x'")
	if _, err := env.Where(e, &sqldb.Args{}); err == nil {
		t.Error("relation path without Lookup: no error")
	}
	// The relation's own column needs no lookup.
	e, _ = Parse("author = 'u1' && authors ~ 'u2'")
	if _, err := env.Where(e, &sqldb.Args{}); err != nil {
		t.Error(err)
	}
}

func TestCompileBadNodes(t *testing.T) {
	env := testEnv(sqldb.SQLite, "posts")
	bad := []Expr{
		&Compare{Path: "title", Op: Eq},
		&Compare{Path: "title", Op: Eq, Values: []Literal{{Kind: KindString}, {Kind: KindString}}},
		&Compare{Path: "title", Op: Op(99), Values: []Literal{{Kind: KindString}}},
		&Compare{Path: "title", Op: Eq, Values: []Literal{{Kind: Kind(42)}}},
		&Compare{Path: "", Op: Eq, Values: []Literal{{Kind: KindString}}},
		&Compare{Path: "meta.a'b", Op: Eq, Values: []Literal{{Kind: KindString}}},
		&Compare{Path: "meta..b", Op: Eq, Values: []Literal{{Kind: KindString}}},
		&Compare{Path: "9title", Op: Eq, Values: []Literal{{Kind: KindString}}},
		&Not{X: nil},
		&Logical{Op: And, X: &Compare{Path: "title", Op: Eq, Values: []Literal{{Kind: KindString}}}, Y: nil},
	}
	for _, e := range bad {
		if s, err := env.Where(e, &sqldb.Args{}); err == nil {
			t.Errorf("Where(%#v) = %s, want an error", e, s)
		}
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		d          sqldb.Dialect
		coll, sort string
		orderBy    string
	}{
		{sqldb.SQLite, "posts", "", `r."id" ASC`},
		{sqldb.SQLite, "posts", "-created", `r."created" DESC NULLS LAST, r."id" DESC`},
		{sqldb.SQLite, "posts", "-created,title", `r."created" DESC NULLS LAST, r."title" ASC NULLS FIRST, r."id" ASC`},
		{sqldb.SQLite, "posts", "title,-views", `r."title" ASC NULLS FIRST, r."views" DESC NULLS LAST, r."id" DESC`},
		{sqldb.SQLite, "posts", "-id,title", `r."id" DESC, r."title" ASC NULLS FIRST`},
		{sqldb.SQLite, "posts", "meta.score,author", `json_extract(r."meta", '$."score"') ASC NULLS FIRST, r."author" ASC NULLS FIRST, r."id" ASC`},
		{sqldb.Postgres, "posts", "-meta.a.0", `(r."meta" #> '{"a","0"}') DESC NULLS LAST, r."id" DESC`},
		{sqldb.Postgres, "posts", "meta", `r."meta" ASC NULLS FIRST, r."id" ASC`},
		{sqldb.SQLite, "docs", "a.b,-updated", `json_extract(r."data", '$."a"."b"') ASC NULLS FIRST, r."updated" DESC NULLS LAST, r."id" DESC`},
		{sqldb.Postgres, "docs", "title", `(r."data" #> '{"title"}') ASC NULLS FIRST, r."id" ASC`},
	}
	for _, tt := range tests {
		sorts, err := ParseSort(tt.sort)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := testEnv(tt.d, tt.coll).Order(sorts)
		if err != nil {
			t.Errorf("%s %q: %v", tt.d, tt.sort, err)
			continue
		}
		if got := OrderBy(keys); got != tt.orderBy {
			t.Errorf("%s %q:\n got: %s\nwant: %s", tt.d, tt.sort, got, tt.orderBy)
		}
	}
}

func TestOrderErrors(t *testing.T) {
	tests := []struct {
		coll, sort string
		pos        int
		want       string
	}{
		{"posts", "nope", 0, `unknown field "nope" in collection "posts"`},
		{"posts", "title,-tags", 7, `cannot sort by "tags": it is a list`},
		{"posts", "author.name", 0, `cannot sort by "author.name": sorting through a relation is not supported`},
		{"posts", "orphan.name", 0, `cannot sort by "orphan.name": sorting through a relation is not supported`},
		{"posts", "title.x", 5, `field "title" is a text field and has no nested fields; only json and relation fields do`},
		{"docs", "id.x", 2, `"id" has no nested fields`},
	}
	for _, tt := range tests {
		sorts, err := ParseSort(tt.sort)
		if err != nil {
			t.Fatal(err)
		}
		_, err = testEnv(sqldb.SQLite, tt.coll).Order(sorts)
		var qe *Error
		if !errors.As(err, &qe) || qe.Pos != tt.pos || qe.Msg != tt.want {
			t.Errorf("%q: got %v, want at %d: %s", tt.sort, err, tt.pos, tt.want)
		}
	}
	if _, err := testEnv(sqldb.SQLite, "posts").Order([]Sort{{Path: "title"}, {Path: "title", Desc: true}}); err == nil {
		t.Error("a path twice: no error")
	}
}

func TestAfter(t *testing.T) {
	tests := []struct {
		d         sqldb.Dialect
		sort      string
		last      []any
		sql, args string
	}{
		{sqldb.SQLite, "", []any{"p1"}, `r."id" > ?`, `[]interface {}{"p1"}`},
		{sqldb.Postgres, "-created", []any{"2026-01-02T03:04:05.006Z", "p1"}, `(r."created", r."id") < ($1, $2)`,
			`[]interface {}{time.Date(2026, time.January, 2, 3, 4, 5, 6000000, time.UTC), "p1"}`},
		{sqldb.SQLite, "-created", []any{"2026-01-02T03:04:05.006Z", "p1"}, `(r."created", r."id") < (?, ?)`,
			`[]interface {}{"2026-01-02T03:04:05.006Z", "p1"}`},
		{sqldb.SQLite, "views", []any{2.5, "p1"}, `(r."views" >= ? AND (r."views" > ? OR (r."views" = ? AND r."id" > ?)))`, `[]interface {}{2.5, 2.5, 2.5, "p1"}`},
		{sqldb.SQLite, "views", []any{nil, "p1"}, `(r."views" IS NOT NULL OR (r."views" IS NULL AND r."id" > ?))`, `[]interface {}{"p1"}`},
		{sqldb.SQLite, "-views", []any{2.5, "p1"}, `((r."views" < ? OR r."views" IS NULL) OR (r."views" = ? AND r."id" < ?))`, `[]interface {}{2.5, 2.5, "p1"}`},
		{sqldb.Postgres, "-views", []any{nil, "p1"}, `(r."views" IS NULL AND r."id" < $1)`, `[]interface {}{"p1"}`},
		{sqldb.Postgres, "done,-meta.n", []any{true, `"x"`, "p1"},
			`(r."done" >= $1 AND (r."done" > $2 OR (r."done" = $3 AND ((r."meta" #> '{"n"}') < $4::jsonb OR (r."meta" #> '{"n"}') IS NULL)) OR (r."done" = $5 AND (r."meta" #> '{"n"}') = $6::jsonb AND r."id" < $7)))`,
			`[]interface {}{true, true, true, "\"x\"", true, "\"x\"", "p1"}`},
		{sqldb.SQLite, "done", []any{1.0, "p1"}, `(r."done" >= ? AND (r."done" > ? OR (r."done" = ? AND r."id" > ?)))`, `[]interface {}{true, true, true, "p1"}`},
	}
	for _, tt := range tests {
		sorts, _ := ParseSort(tt.sort)
		env := testEnv(tt.d, "posts")
		keys, err := env.Order(sorts)
		if err != nil {
			t.Fatal(err)
		}
		args := &sqldb.Args{Dialect: tt.d}
		got, err := env.After(keys, tt.last, args)
		if err != nil {
			t.Errorf("%s %q: %v", tt.d, tt.sort, err)
			continue
		}
		if got != tt.sql {
			t.Errorf("%s %q sql\n got: %s\nwant: %s", tt.d, tt.sort, got, tt.sql)
		}
		if a := fmt.Sprintf("%#v", args.Values); a != tt.args {
			t.Errorf("%s %q args\n got: %s\nwant: %s", tt.d, tt.sort, a, tt.args)
		}
	}
}
