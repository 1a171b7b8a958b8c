package query

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

// The random rules below are built from sides of one class, so that most
// of them type-check; a few mix classes, to check errors too.
type sides struct{ paths, vars, lits []string }

var ruleSides = map[string]map[class]sides{
	"notes": {
		cText: {
			paths: []string{"title", "status", "owner", "id", "owner.name", "owner.role", "members.name", "owner.team.name", "owner.email", "owner.team"},
			vars: []string{"@request.auth.id", "@request.auth.collection", "@request.auth.name", "@request.auth.role", "@request.auth.email",
				"@request.auth.team", "@request.body.title", "@request.body.owner", "@request.body.status", "@request.query.q", "@request.method"},
			lits: []string{"'u1'", "'u2'", "'x'", "''", "'Ann'", "'admin'", "'live'", "'GET'", "'red'", "'an'", "'%'", "'ÉCOLE'", "'cole'", "null"},
		},
		cNumber: {
			paths: []string{"views", "owner.age", "members.age"},
			vars:  []string{"@request.auth.age", "@request.body.views"},
			lits:  []string{"0", "1", "10", "17", "18", "-3", "2.5", "null"},
		},
		cBool: {
			paths: []string{"done", "owner.verified"},
			vars:  []string{"@request.auth.verified", "@request.body.done"},
			lits:  []string{"true", "false", "null"},
		},
		cTime: {
			paths: []string{"due", "created", "updated", "owner.born"},
			vars:  []string{"@now", "@request.auth.born", "@request.body.due"},
			lits:  []string{"'2026-01-01'", "'2026-06-01T12:00:00Z'", "'2026-06-01T12:00:00.499Z'", "'1990-01-01'", "null"},
		},
		cList: {
			paths: []string{"tags", "members", "owner.friends"},
			vars:  []string{"@request.auth.friends", "@request.body.tags", "@request.body.members", "@request.auth.id", "@request.body.owner"},
			lits:  []string{"'go'", "'u1'", "'u2'", "'u9'", "null"},
		},
		cJSON: {
			paths: []string{"meta", "meta.n", "meta.s", "meta.a.b", "meta.list.0", "meta.public", "meta.tags", "owner.prefs.theme"},
			vars:  []string{"@request.auth.prefs", "@request.body.meta", "@request.auth.name", "@request.body.views", "@request.query.q"},
			lits:  []string{"1", "'1'", "'x'", "true", "2.5", "'go'", "'dark'", "null"},
		},
	},
	"docs": {
		cText: {
			paths: []string{"id"},
			vars:  []string{"@request.auth.id", "@request.auth.name", "@request.query.q", "@request.method"},
			lits:  []string{"'u1'", "'x'", "''", "'d01'", "null"},
		},
		cNumber: {vars: []string{"@request.auth.age"}, lits: []string{"1", "3", "null"}},
		cTime: {
			paths: []string{"created", "updated"},
			vars:  []string{"@now", "@request.auth.born"},
			lits:  []string{"'2026-01-01'", "'2026-06-01T12:00:00Z'"},
		},
		cJSON: {
			paths: []string{"owner", "title", "n", "flag", "tags", "meta.a", "list.0.x", "tags.0"},
			vars:  []string{"@request.body.owner", "@request.body.title", "@request.body.n", "@request.body.flag", "@request.body.tags", "@request.auth.id", "@request.auth.age", "@request.query.q"},
			lits:  []string{"'u1'", "'u2'", "1", "3", "'x'", "true", "false", "null"},
		},
	},
}

// classOps are the operators that apply to each class.
var classOps = map[class][]string{
	cText: randomOps, cJSON: randomOps,
	cNumber: {"=", "!=", ">", ">=", "<", "<=", "in", "not in"},
	cTime:   {"=", "!=", ">", ">=", "<", "<=", "in", "not in"},
	cBool:   {"=", "!=", "in", "not in"},
	cList:   {"~", "!~", "in", "not in", "=", "!="},
}

// randomCompare writes one comparison of sides of coll.
func randomCompare(r *rand.Rand, coll string) string {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	classes := slices.Sorted(maps.Keys(ruleSides[coll]))
	k := classes[r.IntN(len(classes))]
	s := ruleSides[coll][k]
	side := func(kind int) string {
		if r.IntN(20) == 0 {
			s := ruleSides[coll][classes[r.IntN(len(classes))]] // most likely a type error
			return pick(append(append(slices.Clone(s.paths), s.vars...), s.lits...))
		}
		switch {
		case kind == 0 && len(s.paths) > 0:
			return pick(s.paths)
		case kind == 2:
			return pick(s.lits)
		}
		return pick(s.vars)
	}
	op := pick(classOps[k])
	if op == "in" || op == "not in" {
		items := make([]string, 1+r.IntN(3))
		for i := range items {
			for items[i] == "" || items[i] == "null" {
				items[i] = pick(s.lits)
			}
		}
		return side(r.IntN(2)) + " " + op + " (" + strings.Join(items, ", ") + ")"
	}
	// path-var, var-path, var-lit, lit-var, var-var, path-lit
	kinds := [][2]int{{0, 1}, {0, 1}, {1, 0}, {1, 2}, {2, 1}, {1, 1}, {0, 2}}[r.IntN(7)]
	left, right := side(kinds[0]), side(kinds[1])
	if (left == "null" || right == "null") && op != "=" && op != "!=" {
		op = oneOf(r, "=", "!=")
	}
	return left + " " + op + " " + right
}

// randomRule writes a random rule over coll.
func randomRule(r *rand.Rand, coll string, depth int) string {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(3) {
		case 0:
			return "!(" + randomRule(r, coll, depth-1) + ")"
		case 1:
			return "(" + randomRule(r, coll, depth-1) + " && " + randomRule(r, coll, depth-1) + ")"
		default:
			return "(" + randomRule(r, coll, depth-1) + " || " + randomRule(r, coll, depth-1) + ")"
		}
	}
	return randomCompare(r, coll)
}

var (
	randomTimes = []string{"1990-01-01", "2008-05-05", "2025-12-31T23:59:59.999Z", "2026-01-01", "2026-06-01T12:00:00Z", "2026-06-01T12:00:00.5Z", "2027-01-01"}
	randomTexts = []any{"Ann", "ann", "Bob", "", "x", "u1", "Ann's plan", "GO tips", "100%", "a_b", "ÉCOLE", "école"}
	randomJSON  = []string{`{"n":1,"s":"x","a":{"b":"u1"},"list":["x",2],"public":true}`, `{"n":"1","s":"X"}`, `[1,"x"]`, `"x"`,
		`null`, `{"n":2.5,"tags":["go",1,true]}`, `{"a":{"b":1},"a":{"b":2},"public":false}`, `{"theme":"dark"}`, `{"0":"zero","list":{"0":"x"}}`}
)

func oneOf[T any](r *rand.Rand, l ...T) T { return l[r.IntN(len(l))] }

// maybe returns v, or nil one time in four.
func maybe(r *rand.Rand, v any) any {
	if r.IntN(4) == 0 {
		return nil
	}
	return v
}

func someOf(r *rand.Rand, l ...string) []string {
	out := []string{}
	for _, s := range l {
		if r.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

var ruleUserIDs = []string{"u1", "u2", "u3", "u4", "u5", "u6", "u9"}

func randomUserValues(r *rand.Rand) row {
	return row{
		"email": maybe(r, fmt.Sprintf("u%d@example.com", r.IntN(9))), "verified": maybe(r, r.IntN(2) == 0),
		"name": maybe(r, oneOf(r, randomTexts...)), "role": maybe(r, oneOf(r, "admin", "editor", "viewer")),
		"age": maybe(r, oneOf(r, 0.0, 17.0, 18.0, 30.0, -3.0, 2.5)), "team": maybe(r, oneOf(r, "t1", "t2", "t3", "t9")),
		"friends": maybe(r, someOf(r, ruleUserIDs...)), "born": maybe(r, day(oneOf(r, randomTimes...))),
		"prefs": maybe(r, raw(oneOf(r, randomJSON...))),
	}
}

func randomNoteValues(r *rand.Rand) row {
	return row{
		"title": maybe(r, oneOf(r, randomTexts...)), "views": maybe(r, oneOf(r, 0.0, 1.0, 10.0, 17.0, -3.0, 2.5)),
		"done": maybe(r, r.IntN(2) == 0), "due": maybe(r, day(oneOf(r, randomTimes...))),
		"status": maybe(r, oneOf(r, "draft", "live", "archived")), "tags": maybe(r, someOf(r, "go", "sql", "web")),
		"owner": maybe(r, oneOf(r, ruleUserIDs...)), "members": maybe(r, someOf(r, ruleUserIDs...)),
		"meta": maybe(r, raw(oneOf(r, randomJSON...))),
	}
}

func randomDoc(r *rand.Rand) map[string]any {
	d := map[string]any{}
	put := func(k string, vals ...any) {
		if r.IntN(3) > 0 {
			d[k] = oneOf(r, vals...)
		}
	}
	put("owner", "u1", "u2", json.Number("1"), nil)
	put("title", "x", "X", "", "ann")
	put("n", json.Number("1"), json.Number("3"), "3", json.Number("2.5"))
	put("flag", true, false)
	put("tags", []any{"x", json.Number("1")}, []any{}, "x")
	put("meta", map[string]any{"a": json.Number("1")}, map[string]any{"a": "x"}, map[string]any{})
	put("list", []any{map[string]any{"x": json.Number("1")}}, []any{})
	return d
}

// randomRuleRows writes random rows of the rule collections.
func randomRuleRows(r *rand.Rand) map[string][]row {
	rows := map[string][]row{"teams": {{"id": "t1", "name": "red"}, {"id": "t2", "name": "blue"}, {"id": "t3"}}}
	for _, id := range ruleUserIDs[:6] {
		u := randomUserValues(r)
		u["id"] = id
		rows["users"] = append(rows["users"], u)
	}
	for i := range 30 {
		n := randomNoteValues(r)
		n["id"], n["created"] = fmt.Sprintf("n%02d", i), day(oneOf(r, randomTimes...))
		rows["notes"] = append(rows["notes"], n)
	}
	for i := range 12 {
		b, _ := json.Marshal(randomDoc(r))
		rows["docs"] = append(rows["docs"], row{"id": fmt.Sprintf("d%02d", i), "data": string(b)})
	}
	return rows
}

// randomRequest writes a request on coll: anonymous, by a user of rows or
// one not among them, or by a superuser, with a random body, query and
// method.
func randomRequest(r *rand.Rand, coll string, rows map[string][]row) *Request {
	cs := ruleCollections()
	req := &Request{Now: day(oneOf(r, randomTimes...)), Method: oneOf(r, "GET", "POST", "PATCH", "DELETE", "")}
	switch k := r.IntN(7); {
	case k == 0:
	case k == 1:
		req.AuthSchema = cs["users"]
	case k == 6:
		req.Auth, req.AuthSchema = map[string]any{"id": "s1", "collection": "_superusers"}, cs["_superusers"]
	default:
		u := randomUserValues(r)
		if k < 5 {
			u = oneOf(r, rows["users"]...)
		}
		req.Auth, req.AuthSchema = map[string]any{"id": oneOf(r, ruleUserIDs...), "collection": "users"}, cs["users"]
		for k, v := range u {
			if k != "id" && k != "created" && k != "updated" {
				req.Auth[k] = v
			}
		}
	}
	if r.IntN(3) > 0 {
		req.Query = map[string]string{}
		for _, k := range someOf(r, "q", "s") {
			req.Query[k] = oneOf(r, randomTexts...).(string)
		}
	}
	if r.IntN(3) == 0 {
		return req
	}
	req.Body = map[string]any{}
	var body map[string]any
	if coll == "docs" {
		body = randomDoc(r)
	} else {
		body = randomNoteValues(r)
	}
	for _, k := range someOf(r, slices.Sorted(maps.Keys(body))...) {
		req.Body[k] = body[k]
	}
	return req
}

// testRuleAgreement checks, for random rules, records and requests, that
// Eval gives every record the answer the database gives.
func testRuleAgreement(t *testing.T, e *engine) {
	skipUnlessC(t, e)
	r := rand.New(rand.NewPCG(7, 11))
	rows := randomRuleRows(r)
	re := loadRules(t, e, rows)
	ran, split := 0, 0
	for i := 0; i < 1500 && !t.Failed(); i++ {
		coll := "notes"
		if i%4 == 3 {
			coll = "docs"
		}
		expr, err := Parse(randomRule(r, coll, 2))
		if err != nil {
			continue // two values or two fields, mixed in on purpose
		}
		for range 3 {
			got, err := re.run(t, coll, expr, randomRequest(r, coll, rows))
			if err != nil {
				continue
			}
			ran++
			if len(got) > 0 && len(got) < len(rows[coll]) {
				split++
			}
		}
	}
	t.Logf("%d rule runs agreed, %d of them selecting some records but not all", ran, split)
	if ran < 2000 || split < 500 {
		t.Errorf("only %d runs type-checked and %d split the records", ran, split)
	}
}

// testEvalAgreement checks that Eval agrees with the database on the
// filters of testRandom.
func testEvalAgreement(t *testing.T, e *engine) {
	skipUnlessC(t, e)
	cs := testCollections()
	recs := records(t, cs, stamp(fixture()))
	fetch := fetcher(recs)
	r := rand.New(rand.NewPCG(3, 4))
	ran := 0
	for i := 0; i < 3000 && ran < 800 && !t.Failed(); i++ {
		coll := "posts"
		if i%4 == 3 {
			coll = "docs"
		}
		src := randomFilter(r, coll, 3)
		expr, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		env := testEnv(e.d, coll)
		args := &sqldb.Args{Dialect: e.d}
		where, werr := env.Where(expr, args)
		var want []string
		if werr == nil {
			ran++
			want, _ = e.ids(t, coll, where, args, nil, 0)
		}
		var got []string
		for _, rec := range recs[coll] {
			ok, err := env.Eval(context.Background(), expr, rec, fetch)
			if fmt.Sprint(err) != fmt.Sprint(werr) {
				t.Fatalf("%s: Where: %v, Eval on %s: %v", src, werr, rec.ID, err)
			}
			if ok {
				got = append(got, rec.ID)
			}
		}
		slices.Sort(got)
		if werr == nil && !slices.Equal(got, want) {
			t.Errorf("%s\n  sql: %s\n  SQL: %v\n Eval: %v", src, where, want, got)
		}
	}
	if ran < 300 {
		t.Errorf("only %d random filters type-checked", ran)
	}
}

// skipUnlessC skips a test of Eval on a PostgreSQL database whose locale
// orders text otherwise than by bytes, or folds letters other than ASCII.
func skipUnlessC(t *testing.T, e *engine) {
	if e.d != sqldb.Postgres {
		return
	}
	var byBytes, folds bool
	row := e.db.(interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}).QueryRowContext(context.Background(), `SELECT 'B' < 'a' AND '"B"'::jsonb < '"a"'::jsonb, 'É' ILIKE 'é'`)
	if err := row.Scan(&byBytes, &folds); err != nil {
		t.Fatal(err)
	}
	if !byBytes || folds {
		t.Skip("Eval compares text as the C locale does; this database has another locale")
	}
}

// FuzzRuleAgreement runs fuzzed rules with random requests on random
// records in SQLite, with a fuzzed text as a query parameter and in the
// body: Where and Eval must fail alike or agree on every record.
func FuzzRuleAgreement(f *testing.F) {
	for i, tt := range ruleCases {
		f.Add(tt.rule, uint64(i), "an")
	}
	r := rand.New(rand.NewPCG(1, 1))
	for i := range 50 {
		coll := "notes"
		if i%4 == 3 {
			coll = "docs"
		}
		f.Add(randomRule(r, coll, 2), uint64(i), oneOf(r, randomTexts...).(string))
	}
	f.Add("title ~ @request.query.q || @request.body.title = @request.query.q", uint64(2), "%_\\'")
	f.Add("title = @request.query.q", uint64(5), "a\xffb")
	rows := randomRuleRows(rand.New(rand.NewPCG(7, 11)))
	re := loadRules(f, emptySQLite(f, f.TempDir()), rows)
	f.Fuzz(func(t *testing.T, rule string, seed uint64, text string) {
		expr, err := Parse(rule)
		if err != nil {
			return
		}
		coll := "notes"
		if seed%4 == 3 {
			coll = "docs"
		}
		req := randomRequest(rand.New(rand.NewPCG(seed, 0)), coll, rows)
		req.Query = map[string]string{"q": text}
		if req.Body != nil {
			req.Body["title"] = text
		}
		re.run(t, coll, expr, req)
	})
}

// BenchmarkEval measures a rule with variables and a relation evaluated
// on one record in memory.
func BenchmarkEval(b *testing.B) {
	const rule = `@request.auth.role = "admin" || members ~ @request.auth.id || (owner.team.name = "red" && due < @now)`
	e, err := Parse(rule)
	if err != nil {
		b.Fatal(err)
	}
	recs := records(b, ruleCollections(), stamp(ruleFixture()))
	fetch := fetcher(recs)
	env := ruleEnv(sqldb.SQLite, "notes", bob)
	rec := recs["notes"][0]
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := env.Eval(context.Background(), e, rec, fetch); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkCompileRule measures what a request pays for a rule: parse and
// compile with the request's values bound.
func BenchmarkCompileRule(b *testing.B) {
	const rule = `@request.auth.id != null && (owner = @request.auth.id || members ~ @request.auth.id) && due < @now && @request.body.owner = null`
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		b.Run(d.String(), func(b *testing.B) {
			env := ruleEnv(d, "notes", bob.with(map[string]any{"title": "x"}, nil, "PATCH"))
			b.ReportAllocs()
			for b.Loop() {
				e, err := Parse(rule)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := env.Where(e, &sqldb.Args{Dialect: d}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
