package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

func TestParseVariables(t *testing.T) {
	tests := []struct{ src, want string }{
		{"owner = @request.auth.id", "owner = @request.auth.id"},
		{"@request.auth.id = owner", "owner = @request.auth.id"},
		{"@request.auth.id != null", "@request.auth.id != null"},
		{"null != @request.auth.id", "@request.auth.id != null"},
		{"5 < @request.body.views", "@request.body.views > 5"},
		{"@request.body.views < views", "views > @request.body.views"},
		{"@request.body.owner = @request.auth.id", "@request.body.owner = @request.auth.id"},
		{"@request.method in ('GET', 'POST')", "@request.method in ('GET', 'POST')"},
		{"@request.method not in ('GET')", "@request.method not in ('GET')"},
		{"members ~ @request.auth.id", "members ~ @request.auth.id"},
		{"members !~ @request.auth.id", "members !~ @request.auth.id"},
		{"@request.auth.friends ~ 'u1'", "@request.auth.friends ~ 'u1'"},
		{"!(@now > due)", "!(due < @now)"},
		{"@_x.y_1 = 1", "@_x.y_1 = 1"},
		{"a=@now&&@now=a", "a = @now && a = @now"},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := e.String(); got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.src, got, tt.want)
		}
		if e2, err := Parse(e.String()); err != nil || e2.String() != e.String() {
			t.Errorf("reparse of %s: %v, %v", e, e2, err)
		}
	}
}

func TestParseVariableErrors(t *testing.T) {
	tests := []struct {
		src  string
		pos  int
		want string
	}{
		{"@ = 1", 0, `expected a variable name after "@", such as @request.auth.id`},
		{"@1 = 1", 0, `expected a variable name after "@", such as @request.auth.id`},
		{"a = @", 4, `expected a variable name after "@", such as @request.auth.id`},
		{"a = @.b", 4, `expected a variable name after "@", such as @request.auth.id`},
		{"@request..auth = 1", 9, `invalid field path "@request..auth": empty segment`},
		{"@request.auth. = 1", 14, `invalid field path "@request.auth.": expected a name after the last "."`},
		{"status in (@request.query.s)", 11, `expected a value in the "in" list, found the variable "@request.query.s"; an in list holds literals only`},
		{"status in ('a', @now)", 16, `expected a value in the "in" list, found the variable "@now"; an in list holds literals only`},
		{"@request.auth.friends ~ owner", 0, `expected the field "owner" on the left of "~", found the variable "@request.auth.friends"`},
		{"@request.auth.id !~ members", 0, `expected the field "members" on the left of "!~", found the variable "@request.auth.id"`},
		{"'x' ~ @request.auth.id", 0, `expected a field on the left of "~", found "'x'"`},
		{"1 in (@now)", 0, `expected a field on the left of "in", found "1"`},
		{"@now", 4, `expected an operator (=, !=, >, >=, <, <=, ~, !~, in) after "@now", found end of input`},
		{"title = 'a' @now", 12, `expected "&&", "||" or end of input, found "@now"`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var qe *Error
		if !errors.As(err, &qe) || qe.Pos != tt.pos || qe.Msg != tt.want {
			t.Errorf("Parse(%q):\n got: %v\nwant: at %d: %s", tt.src, err, tt.pos, tt.want)
		}
	}
}

func lookup(cs map[string]*schema.Collection) func(string) *schema.Collection {
	return func(name string) *schema.Collection { return cs[name] }
}

func TestCheckRule(t *testing.T) {
	cs := ruleCollections()
	valid := []string{
		"",
		"  ",
		"owner = @request.auth.id",
		`@request.auth.role = "admin" || members ~ @request.auth.id`,
		"owner = @request.auth.id && @request.body.owner = null",
		"@request.auth.id != null && due < @now && @request.method in ('GET', 'PATCH')",
		"@request.auth.friends ~ @request.body.owner || title ~ @request.query.q",
		"@request.body.meta != null && meta.n = @request.body.views",
		"owner.team = @request.auth.team && owner.born < @request.auth.born",
	}
	for _, rule := range valid {
		if err := CheckRule(rule, cs["notes"], lookup(cs), cs["users"]); err != nil {
			t.Errorf("CheckRule(%q): %v", rule, err)
		}
	}
	tests := []struct {
		coll, rule string
		pos        int
		want       string
	}{
		{"notes", "owner = @request.auth.nope", 22, `unknown field "nope" in auth collection "users"`},
		{"notes", "@request.auth.role = 1", 21, `@request.auth.role is text; expected a string, found 1`},
		{"notes", "views > @request.auth.name", 8, `field "views" is a number field; expected a number, found @request.auth.name, which is text`},
		{"notes", "@request.auth.verified > true", 23, `@request.auth.verified is a bool; only = and != apply to it, not ">"`},
		{"notes", "due < @request.body.title", 6, `field "due" is a datetime field; expected a datetime, found @request.body.title, which is text`},
		{"notes", "tags ~ @request.auth.age", 7, `field "tags" holds a list of strings; expected text, found @request.auth.age, which is a number`},
		{"notes", "owner = @request.auth.friends", 8, `@request.auth.friends is a list; it is compared with values and other variables, not with fields`},
		{"notes", "meta.a = @request.body.meta", 9, `@request.body.meta is json; it is compared with values and other variables, not with fields`},
		{"notes", "@request.body.nope = 1", 14, `unknown field "nope" in collection "notes"`},
		{"notes", "@request.body.id = 'x'", 14, `unknown field "id" in collection "notes"`},
		{"notes", "@request.bogus = 1", 0, `unknown variable "@request.bogus"; the variables are @request.auth.id, @request.auth.collection, @request.auth.<field>, @request.body.<field>, @request.query.<name>, @request.method and @now`},
		{"notes", "@request = 1", 0, `unknown variable "@request"; the variables are @request.auth.id, @request.auth.collection, @request.auth.<field>, @request.body.<field>, @request.query.<name>, @request.method and @now`},
		{"notes", "@nope.x = 1", 0, `unknown variable "@nope.x"; the variables are @request.auth.id, @request.auth.collection, @request.auth.<field>, @request.body.<field>, @request.query.<name>, @request.method and @now`},
		{"notes", "@request.auth = 1", 13, `expected a name after @request.auth, as in @request.auth.<field>`},
		{"notes", "@request.query = 'x'", 14, `expected a name after @request.query, as in @request.query.<name>`},
		{"notes", "@request.method.x = 'GET'", 15, `@request.method has no nested fields`},
		{"notes", "@now.x = 1", 4, `@now has no nested fields`},
		{"notes", "@request.query.a.b = 'x'", 16, `@request.query.a has no nested fields`},
		{"notes", "@request.auth.team.name = 'red'", 18, `@request.auth.team has no nested fields`},
		{"notes", "meta.a = @now", 9, `"meta.a" is a json value; expected text, a number or a bool, found @now, which is a datetime`},
		{"notes", "@now ~ 'x'", 5, `@now is a datetime; "~" applies to text, lists and json values`},
		{"notes", "@now > 'soon'", 7, `'soon' is not a datetime; @now expects RFC 3339 like '2026-01-02T15:04:05Z' or a date like '2026-01-02'`},
		{"notes", "@request.auth.friends = 'u1'", 22, `@request.auth.friends is a list; "=" does not apply to it: use ~ to test whether it holds a value (@request.auth.friends ~ 'x'), in (...) for any of several values, or = null for empty`},
		{"notes", "@request.auth.friends ~ 1", 24, `@request.auth.friends holds a list of strings; expected a string, found 1`},
		{"notes", "@request.auth.id ~ @request.auth.friends", 19, `@request.auth.friends is a list; on the right of "~", a variable is text, a number, a bool or a datetime`},
		{"notes", "@request.auth.age = @request.auth.name", 20, `@request.auth.age is a number; expected a number, found @request.auth.name, which is text`},
		{"notes", "@request.auth.prefs = @request.body.meta", 22, `@request.body.meta is json; on the right of "=", a variable is text, a number, a bool or a datetime`},
		{"notes", "@request.auth.prefs > true", 20, `">" compares numbers and strings; true is a bool`},
		{"notes", "@request.auth.id > null", 19, `null is compared only with = and !=; found ">"`},
		{"notes", "tags = @request.auth.id", 5, `field "tags" is a list; "=" does not apply to it: use ~ to test whether it holds a value (tags ~ 'x'), in (...) for any of several values, or = null for empty`},
		{"notes", "done > @request.body.done", 5, `field "done" is a bool field; only = and != apply to it, not ">"`},
		{"notes", "meta.a > @request.body.done", 7, `">" compares numbers and strings; @request.body.done is a bool`},
		{"notes", "nope = @request.auth.id", 0, `unknown field "nope" in collection "notes"`},
		{"notes", "owner.nope = @request.auth.id", 6, `unknown field "nope" in collection "users"`},
		{"notes", "title = 'a' && (views = 1 || @request.auth.age ~ 'x')", 47, `@request.auth.age is a number; "~" applies to text, lists and json values`},
		{"docs", "n < @request.body.n", 4, `@request.body.n is json; it is compared with values and other variables, not with fields`},
		{"docs", "@request.body.n = @request.body.owner", 18, `@request.body.owner is json; on the right of "=", a variable is text, a number, a bool or a datetime`},
		{"docs", "@request.body.a.b = 1", 15, `@request.body.a has no nested fields`},
	}
	for _, tt := range tests {
		err := CheckRule(tt.rule, cs[tt.coll], lookup(cs), cs["users"])
		var qe *Error
		if !errors.As(err, &qe) || qe.Pos != tt.pos || qe.Msg != tt.want {
			t.Errorf("CheckRule(%q):\n got: %v\nwant: at %d: %s", tt.rule, err, tt.pos, tt.want)
		}
	}
	// Without the auth collection, only id and collection are known.
	if err := CheckRule("@request.auth.id = owner || @request.auth.collection = 'x'", cs["notes"], lookup(cs), nil); err != nil {
		t.Error(err)
	}
	err := CheckRule("owner = @request.auth.id || @request.auth.role = 'admin'", cs["notes"], lookup(cs), nil)
	var qe *Error
	if want := "@request.auth.role needs the caller's auth collection; without it only @request.auth.id and @request.auth.collection are known"; !errors.As(err, &qe) || qe.Pos != 42 || qe.Msg != want {
		t.Errorf("without auth schema: %v", err)
	}
	if err := CheckRule("title = ", cs["notes"], lookup(cs), nil); !errors.As(err, &qe) {
		t.Errorf("syntax error: %v", err)
	}
}

// Where and Check give the same type errors, with or without values.
func TestCheckAgreesWithWhere(t *testing.T) {
	for _, tt := range ruleCases {
		e, err := Parse(tt.rule)
		if err != nil {
			t.Fatal(err)
		}
		env := ruleEnv(sqldb.SQLite, tt.coll, &Request{AuthSchema: ruleCollections()["users"]})
		if err := env.Check(e); err != nil {
			t.Errorf("Check(%s): %v", tt.rule, err)
		}
	}
	for _, src := range []string{"views > @request.auth.name", "@now ~ 'x'", "tags ~ @request.auth.age", "done > @request.body.done"} {
		e, _ := Parse(src)
		for _, req := range []*Request{ann, bob, anon.withSchema(), ann.with(map[string]any{"done": true}, nil, "POST")} {
			env := ruleEnv(sqldb.Postgres, "notes", req)
			_, werr := env.Where(e, &sqldb.Args{Dialect: sqldb.Postgres})
			if cerr := env.Check(e); werr == nil || fmt.Sprint(cerr) != fmt.Sprint(werr) {
				t.Errorf("%s: Where: %v, Check: %v", src, werr, cerr)
			}
		}
	}
}

// compileRuleCases are the SQL and args rules compile to for a request.
var compileRuleCases = []struct {
	d          sqldb.Dialect
	coll, rule string
	req        *Request
	sql, args  string // args as %#v prints them
}{
	{sqldb.SQLite, "notes", "owner = @request.auth.id", bob,
		`r."owner" = ?`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "notes", "owner = @request.auth.id", bob,
		`r."owner" = $1`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "notes", "owner = @request.auth.id", anon,
		`FALSE`, `[]interface {}(nil)`},
	{sqldb.SQLite, "notes", "owner != @request.auth.id", anon,
		`r."owner" IS NOT NULL`, `[]interface {}(nil)`},
	{sqldb.Postgres, "notes", "owner != @request.auth.id", bob,
		`(r."owner" IS NULL OR r."owner" <> $1)`, `[]interface {}{"u2"}`},
	{sqldb.SQLite, "notes", "members ~ @request.auth.id", bob,
		`EXISTS (SELECT 1 FROM json_each(r."members") AS j1 WHERE j1.value = ?)`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "notes", "members ~ @request.auth.id", bob,
		`r."members" @> jsonb_build_array($1::text)`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "notes", "members !~ @request.auth.id", anon,
		`TRUE`, `[]interface {}(nil)`},
	{sqldb.SQLite, "notes", "@request.auth.role = 'admin' || members ~ @request.auth.id", bob,
		`EXISTS (SELECT 1 FROM json_each(r."members") AS j1 WHERE j1.value = ?)`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "notes", "@request.auth.role = 'admin' || members ~ @request.auth.id", ann,
		`TRUE`, `[]interface {}{}`},
	{sqldb.SQLite, "notes", "due < @now", bob,
		`r."due" < ?`, `[]interface {}{"2026-06-01T00:00:00.000Z"}`},
	{sqldb.Postgres, "notes", "due < @now", bob,
		`r."due" < $1`, `[]interface {}{time.Date(2026, time.June, 1, 0, 0, 0, 0, time.UTC)}`},
	{sqldb.SQLite, "notes", "title ~ @request.query.q", bob.with(nil, map[string]string{"q": "50%_off"}, "GET"),
		`r."title" LIKE ? ESCAPE '\'`, `[]interface {}{"%50\\%\\_off%"}`},
	{sqldb.Postgres, "notes", "title ~ @request.query.q", bob.with(nil, map[string]string{"q": "50%_off"}, "GET"),
		`r."title" ILIKE $1 ESCAPE '\'`, `[]interface {}{"%50\\%\\_off%"}`},
	{sqldb.Postgres, "notes", "views > @request.body.views && @request.method = 'PATCH'", bob.with(map[string]any{"views": 3.0}, nil, "PATCH"),
		`r."views" > $1`, `[]interface {}{3}`},
	{sqldb.SQLite, "notes", "owner.name = @request.auth.name", bob,
		`r."owner" IN (SELECT a1."id" FROM "users" a1 WHERE a1."name" = ?)`, `[]interface {}{"Bob"}`},
	{sqldb.SQLite, "docs", "owner = @request.auth.id", bob,
		`(json_type(r."data", '$."owner"') = 'text' AND json_extract(r."data", '$."owner"') = ?)`, `[]interface {}{"u2"}`},
	{sqldb.Postgres, "docs", "owner = @request.auth.id", bob,
		`(r."data" #> '{"owner"}') = $1::jsonb`, `[]interface {}{"\"u2\""}`},
	// A constant drops the args of what it decides: $1 is title's.
	{sqldb.Postgres, "notes", "(owner = @request.auth.id && @request.auth.id = null) || title = 'x'", bob,
		`r."title" = $1`, `[]interface {}{"x"}`},
	{sqldb.SQLite, "notes", "!(@request.auth.id != null) || views > @request.auth.age", bob,
		`r."views" > ?`, `[]interface {}{17}`},
	{sqldb.Postgres, "notes", "owner = @request.auth.id && (title = @request.query.q || @request.auth.id != null)", bob,
		`r."owner" = $1`, `[]interface {}{"u2"}`},
}

func TestCompileVariables(t *testing.T) {
	for _, tt := range compileRuleCases {
		t.Run(tt.d.String()+": "+tt.rule, func(t *testing.T) {
			e, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			args := &sqldb.Args{Dialect: tt.d}
			got, err := ruleEnv(tt.d, tt.coll, tt.req).Where(e, args)
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

// Values are bound, never written into the SQL.
func TestVariablesAreBound(t *testing.T) {
	e, _ := Parse("title = @request.query.q || title ~ @request.query.q || owner.name = @request.query.q")
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		for _, p := range injections {
			args := &sqldb.Args{Dialect: d}
			got, err := ruleEnv(d, "notes", ann.with(nil, map[string]string{"q": p}, "GET")).Where(e, args)
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := ruleEnv(d, "notes", ann.with(nil, map[string]string{"q": "x"}, "GET")).Where(e, &sqldb.Args{Dialect: d})
			if got != plain || len(args.Values) != 3 || args.Values[0] != p {
				t.Errorf("%s: %q\n%s\n%#v", d, p, got, args.Values)
			}
		}
	}
}

func TestVariableErrors(t *testing.T) {
	parse := func(s string) Expr {
		e, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	where := func(env *Env, e Expr) error {
		args := &sqldb.Args{Dialect: env.Dialect}
		args.Add("before")
		_, err := env.Where(e, args)
		if err != nil && len(args.Values) != 1 {
			t.Errorf("a failed Where left args %v", args.Values)
		}
		return err
	}
	// In a filter, variables are refused.
	var qe *Error
	err := where(ruleEnv(sqldb.SQLite, "notes", nil), parse("title = 'a' || owner = @request.auth.id"))
	if !errors.As(err, &qe) || qe.Pos != 23 || qe.Msg != "@request.auth.id: request variables are only allowed in rules" {
		t.Errorf("variable in a filter: %v", err)
	}
	if err := ruleEnv(sqldb.SQLite, "notes", nil).Check(parse("@now > due")); !errors.As(err, &qe) {
		t.Errorf("Check of a variable in a filter: %v", err)
	}
	// An anonymous caller's fields are null without the auth schema; a
	// signed-in caller's need it.
	if err := where(ruleEnv(sqldb.SQLite, "notes", &Request{}), parse("@request.auth.role = 'x' || owner = @request.auth.team")); err != nil {
		t.Errorf("anonymous: %v", err)
	}
	noSchema := &Request{Auth: map[string]any{"id": "u1", "collection": "users", "role": "admin"}}
	if err := where(ruleEnv(sqldb.SQLite, "notes", noSchema), parse("@request.auth.role = 'x'")); !errors.As(err, &qe) {
		t.Errorf("no auth schema: %v", err)
	}
	// @now needs Now.
	if err := where(ruleEnv(sqldb.SQLite, "notes", &Request{}), parse("due < @now")); err == nil || errors.As(err, &qe) {
		t.Errorf("no Now: %v", err)
	}
	// Values that are not text, or not of their field's type.
	for _, req := range []*Request{
		ann.with(nil, map[string]string{"q": "a\x00"}, "GET"),
		ann.with(nil, map[string]string{"q": "\xff"}, "GET"),
		ann.with(map[string]any{"title": "\xff"}, nil, "POST"),
		ann.with(map[string]any{"tags": []string{"go", "\x00"}}, nil, "POST"),
	} {
		e := parse("title = @request.query.q || @request.body.title = 'x' || @request.body.tags ~ 'go'")
		if err := where(ruleEnv(sqldb.Postgres, "notes", req), e); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: %v", describe(req), err)
		}
	}
	for _, body := range []map[string]any{{"views": "ten"}, {"views": 1.0, "title": 5}, {"done": 1}, {"due": 5}, {"tags": "go"}} {
		e := parse("views = @request.body.views || title = @request.body.title || done = @request.body.done || due = @request.body.due || @request.body.tags = null")
		if err := where(ruleEnv(sqldb.SQLite, "notes", ann.with(body, nil, "POST")), e); err == nil || errors.As(err, &qe) || errors.Is(err, ErrInvalidValue) {
			t.Errorf("body %v: %v", body, err)
		}
	}
	// A hand-built comparison may not hold variables in an in list.
	bad := &Compare{Path: "title", Op: In, Values: []Literal{{Kind: KindVar, Str: "@now"}}}
	if err := where(ruleEnv(sqldb.SQLite, "notes", ann), bad); !errors.As(err, &qe) {
		t.Errorf("variable in an in list: %v", err)
	}
	// Values of other forms are taken as schema.Values would hold them.
	ok := ann.with(map[string]any{"views": int64(3), "due": "2026-01-01T00:00:00Z", "tags": []any{"go"}, "meta": []byte(`{"a":1}`)}, nil, "POST")
	e := parse("views = @request.body.views && due = @request.body.due && @request.body.tags ~ 'go' && @request.body.meta ~ 1")
	if err := where(ruleEnv(sqldb.SQLite, "notes", ok), e); err != nil {
		t.Errorf("other forms: %v", err)
	}
}

func TestEvalErrors(t *testing.T) {
	ctx := context.Background()
	env := ruleEnv(sqldb.SQLite, "notes", ann)
	e, _ := Parse("owner.name = 'Ann'")
	if _, err := env.Eval(ctx, e, nil, nil); err == nil {
		t.Error("Eval without a record: no error")
	}
	rec := &schema.Record{ID: "n1", Values: schema.Values{"owner": "u1"}}
	if ok, err := env.Eval(ctx, nil, rec, nil); !ok || err != nil {
		t.Errorf("Eval(nil) = %v, %v", ok, err)
	}
	// Without fetch, related records are not found.
	if ok, err := env.Eval(ctx, e, rec, nil); ok || err != nil {
		t.Errorf("Eval without fetch = %v, %v", ok, err)
	}
	boom := errors.New("boom")
	fail := func(context.Context, string, string) (*schema.Record, error) { return nil, boom }
	if _, err := env.Eval(ctx, e, rec, fail); !errors.Is(err, boom) {
		t.Errorf("fetch error: %v", err)
	}
	// Type errors are Where's.
	bad, _ := Parse("views = 'x'")
	var qe *Error
	if _, err := env.Eval(ctx, bad, rec, nil); !errors.As(err, &qe) || qe.Pos != 8 {
		t.Errorf("type error: %v", err)
	}
	// A value of the wrong type in the record is an error.
	wrong := &schema.Record{ID: "n1", Values: schema.Values{"views": "ten", "tags": 5, "meta": json.RawMessage("{")}}
	for _, src := range []string{"views > 1", "tags ~ 'go'", "meta.a = 1"} {
		f, _ := Parse(src)
		if _, err := env.Eval(ctx, f, wrong, nil); err == nil {
			t.Errorf("%s on %v: no error", src, wrong.Values)
		}
	}
	// Each related record is fetched once.
	calls := 0
	recs := records(t, ruleCollections(), stamp(ruleFixture()))
	counting := func(ctx context.Context, coll, id string) (*schema.Record, error) {
		calls++
		return fetcher(recs)(ctx, coll, id)
	}
	f, _ := Parse("owner.name = 'x' || owner.role = 'x' || owner.team.name = 'x' || members.team.name = 'blue'")
	if ok, err := env.Eval(ctx, f, recs["notes"][0], counting); !ok || err != nil || calls != 4 {
		t.Errorf("Eval = %v, %v after %d fetches, want true after 4 (u1, t1, u2, t2)", ok, err, calls)
	}
}
