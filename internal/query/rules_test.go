package query

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// The collections that rules are tested on: users sign in, notes and docs
// carry rules.
func ruleCollections() map[string]*schema.Collection {
	teams := &schema.Collection{Name: "teams", Type: schema.Base, Fields: []*schema.Field{
		{Name: "name", Type: schema.Text},
	}}
	users := &schema.Collection{Name: "users", Type: schema.Auth, Fields: append(schema.AuthFields(),
		&schema.Field{Name: "name", Type: schema.Text},
		&schema.Field{Name: "role", Type: schema.Select, Values: []string{"admin", "editor", "viewer"}},
		&schema.Field{Name: "age", Type: schema.Number},
		&schema.Field{Name: "team", Type: schema.Relation, Collection: "teams"},
		&schema.Field{Name: "friends", Type: schema.Relation, Collection: "users", Multiple: true},
		&schema.Field{Name: "born", Type: schema.DateTime},
		&schema.Field{Name: "prefs", Type: schema.JSON},
	)}
	notes := &schema.Collection{Name: "notes", Type: schema.Base, Fields: []*schema.Field{
		{Name: "title", Type: schema.Text},
		{Name: "views", Type: schema.Number},
		{Name: "done", Type: schema.Bool},
		{Name: "due", Type: schema.DateTime},
		{Name: "status", Type: schema.Select, Values: []string{"draft", "live", "archived"}},
		{Name: "tags", Type: schema.Select, Multiple: true, Values: []string{"go", "sql", "web"}},
		{Name: "owner", Type: schema.Relation, Collection: "users"},
		{Name: "members", Type: schema.Relation, Collection: "users", Multiple: true},
		{Name: "meta", Type: schema.JSON},
	}}
	docs := &schema.Collection{Name: "docs", Type: schema.Document}
	supers := &schema.Collection{Name: "_superusers", Type: schema.Auth, Fields: schema.AuthFields()}
	return map[string]*schema.Collection{"teams": teams, "users": users, "notes": notes, "docs": docs, "_superusers": supers}
}

var ruleOrder = []string{"teams", "users", "notes", "docs"}

func ruleEnv(d sqldb.Dialect, coll string, req *Request) *Env {
	cs := ruleCollections()
	return &Env{Dialect: d, Collection: cs[coll], Alias: "r", Lookup: func(name string) *schema.Collection { return cs[name] }, Request: req}
}

// ruleFixture holds the rows the execution tests run on.
func ruleFixture() map[string][]row {
	return map[string][]row{
		"teams": {{"id": "t1", "name": "red"}, {"id": "t2", "name": "blue"}},
		"users": {
			{"id": "u1", "email": "ann@example.com", "verified": true, "name": "Ann", "role": "admin", "age": 30.0, "team": "t1",
				"friends": []string{"u2"}, "born": day("1990-01-01"), "prefs": raw(`{"theme":"dark"}`)},
			{"id": "u2", "email": "bob@example.com", "verified": false, "name": "Bob", "role": "editor", "age": 17.0, "team": "t2",
				"friends": []string{}, "born": day("2008-05-05")},
			{"id": "u3", "email": "cy@example.com", "name": "Cy", "role": "viewer", "friends": []string{"u1", "u2"}},
		},
		"notes": {
			{"id": "n1", "title": "Ann's plan", "views": 10.0, "done": true, "due": day("2026-01-01"), "status": "live",
				"tags": []string{"go"}, "owner": "u1", "members": []string{"u2"}, "meta": raw(`{"public":true,"n":1}`)},
			{"id": "n2", "title": "Bob's list", "views": 5.0, "done": false, "due": day("2027-01-01"), "status": "draft",
				"tags": []string{}, "owner": "u2", "members": []string{"u1", "u3"}, "meta": raw(`{"public":false}`)},
			{"id": "n3", "title": "orphan", "members": []string{}},
			{"id": "n4", "views": 7.0, "status": "archived", "owner": "u3", "members": []string{"u2"}, "meta": raw(`{"n":"7"}`)},
			{"id": "n5", "title": "lost", "owner": "u9"},
		},
		"docs": {
			{"id": "d1", "data": `{"owner":"u1","title":"a","public":true,"n":3}`},
			{"id": "d2", "data": `{"owner":"u2","public":false}`},
			{"id": "d3", "data": `{}`},
		},
	}
}

// Callers of the execution tests.
var (
	anon  = &Request{Now: day("2026-06-01")}
	ann   = caller("u1", "users", schema.Values{"name": "Ann", "role": "admin", "age": 30.0, "team": "t1", "friends": []string{"u2"}, "verified": true, "born": day("1990-01-01")})
	bob   = caller("u2", "users", schema.Values{"name": "Bob", "role": "editor", "age": 17.0, "team": "t2", "friends": []string{}, "verified": false, "born": day("2008-05-05")})
	cy    = caller("u3", "users", schema.Values{"name": "Cy", "role": "viewer", "friends": []string{"u1", "u2"}})
	super = &Request{Auth: map[string]any{"id": "s1", "collection": "_superusers", "email": "root@example.com"},
		AuthSchema: ruleCollections()["_superusers"], Now: day("2026-06-01")}
)

func caller(id, coll string, fields schema.Values) *Request {
	auth := map[string]any{"id": id, "collection": coll}
	for k, v := range fields {
		auth[k] = v
	}
	return &Request{Auth: auth, AuthSchema: ruleCollections()[coll], Method: "GET", Now: day("2026-06-01")}
}

// with returns a copy of r with a body, query and method.
func (r *Request) with(body map[string]any, query map[string]string, method string) *Request {
	c := *r
	c.Body, c.Query, c.Method = body, query, method
	return &c
}

// records turns rows, as loadRows left them, into the records Eval reads.
func records(tb testing.TB, cs map[string]*schema.Collection, rows map[string][]row) map[string][]*schema.Record {
	tb.Helper()
	out := map[string][]*schema.Record{}
	for name, rs := range rows {
		c := cs[name]
		for _, r := range rs {
			rec := &schema.Record{Collection: c, ID: r["id"].(string), Values: schema.Values{}}
			rec.Created, _ = r["created"].(time.Time)
			rec.Updated, _ = r["updated"].(time.Time)
			if c.Type == schema.Document {
				dec := json.NewDecoder(strings.NewReader(r["data"].(string)))
				dec.UseNumber()
				if err := dec.Decode(&rec.Values); err != nil {
					tb.Fatal(err)
				}
			} else {
				for _, f := range c.Fields {
					rec.Values[f.Name] = r[f.Name]
				}
			}
			out[name] = append(out[name], rec)
		}
	}
	return out
}

// fetcher finds records among recs.
func fetcher(recs map[string][]*schema.Record) Fetch {
	return func(_ context.Context, coll, id string) (*schema.Record, error) {
		for _, r := range recs[coll] {
			if r.ID == id {
				return r, nil
			}
		}
		return nil, nil
	}
}

// ruleEngine is an engine loaded with rows of the rule collections, and
// the same rows as records for Eval.
type ruleEngine struct {
	*engine
	recs map[string][]*schema.Record
}

func loadRules(tb testing.TB, e *engine, rows map[string][]row) *ruleEngine {
	tb.Helper()
	cs := ruleCollections()
	e.loadRows(tb, cs, ruleOrder, rows)
	return &ruleEngine{engine: e, recs: records(tb, cs, rows)}
}

// run selects the ids of coll's records that e satisfies with the request
// in SQL, and checks that Eval agrees on every record. err is the error
// both gave.
func (re *ruleEngine) run(tb testing.TB, coll string, e Expr, req *Request) (ids []string, err error) {
	tb.Helper()
	env := ruleEnv(re.d, coll, req)
	args := &sqldb.Args{Dialect: re.d}
	where, werr := env.Where(e, args)
	if werr == nil {
		ids, _ = re.ids(tb, coll, where, args, nil, 0)
	}
	fetch := fetcher(re.recs)
	var evalIDs []string
	for _, rec := range re.recs[coll] {
		ok, err := env.Eval(context.Background(), e, rec, fetch)
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			tb.Fatalf("%s: Where: %v, Eval on %s: %v", e, werr, rec.ID, err)
		}
		if ok {
			evalIDs = append(evalIDs, rec.ID)
		}
	}
	slices.Sort(evalIDs)
	if werr == nil && !slices.Equal(ids, evalIDs) {
		tb.Errorf("%s (%s)\n  sql: %s\n args: %#v\n  SQL: %v\n Eval: %v", e, describe(req), where, args.Values, ids, evalIDs)
	}
	return ids, werr
}

// describe names a request for messages.
func describe(r *Request) string {
	if r == nil {
		return "no request"
	}
	b, _ := json.Marshal(map[string]any{"auth": r.Auth, "body": r.Body, "query": r.Query, "method": r.Method})
	return string(b)
}
