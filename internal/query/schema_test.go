package query

import (
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// The collections the tests compile against and run on.
func testCollections() map[string]*schema.Collection {
	teams := &schema.Collection{Name: "teams", Type: schema.Base, Fields: []*schema.Field{
		{Name: "name", Type: schema.Text},
	}}
	users := &schema.Collection{Name: "users", Type: schema.Base, Fields: []*schema.Field{
		{Name: "name", Type: schema.Text},
		{Name: "age", Type: schema.Number},
		{Name: "team", Type: schema.Relation, Collection: "teams"},
		{Name: "friends", Type: schema.Relation, Collection: "users", Multiple: true},
	}}
	posts := &schema.Collection{Name: "posts", Type: schema.Base, Fields: []*schema.Field{
		{Name: "title", Type: schema.Text},
		{Name: "views", Type: schema.Number},
		{Name: "done", Type: schema.Bool},
		{Name: "published", Type: schema.DateTime},
		{Name: "status", Type: schema.Select, Values: []string{"draft", "live", "archived"}},
		{Name: "tags", Type: schema.Select, Multiple: true, Values: []string{"go", "sql", "web", "a%b"}},
		{Name: "author", Type: schema.Relation, Collection: "users"},
		{Name: "authors", Type: schema.Relation, Collection: "users", Multiple: true},
		{Name: "meta", Type: schema.JSON},
		{Name: "site", Type: schema.URL},
		{Name: "contact", Type: schema.Email},
		{Name: "orphan", Type: schema.Relation, Collection: "nowhere"},
	}}
	docs := &schema.Collection{Name: "docs", Type: schema.Document}
	return map[string]*schema.Collection{"teams": teams, "users": users, "posts": posts, "docs": docs}
}

func testEnv(d sqldb.Dialect, coll string) *Env {
	cs := testCollections()
	return &Env{Dialect: d, Collection: cs[coll], Alias: "r", Lookup: func(name string) *schema.Collection { return cs[name] }}
}
