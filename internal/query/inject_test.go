package query

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

var injections = []string{
	`' OR 1=1 --`,
	`' OR '1'='1`,
	`" OR ""="`,
	`"; DROP TABLE posts; --`,
	`'; DROP TABLE posts; --`,
	`') OR ('a'='a`,
	`1; DELETE FROM posts`,
	`\'; DROP TABLE posts; --`,
	`%' OR '1'='1`,
	`' UNION SELECT id FROM users --`,
	`'||(SELECT name FROM users LIMIT 1)||'`,
	`*/ OR 1=1 /*`,
	`$1`,
	`?`,
	`\`,
	`_%`,
	`"title"`,
	`r."title"`,
	`x') IS NULL OR ('1`,
	`$."a"') OR 1=1 --`,
	`{a,b}') OR true --`,
}

// testInjection checks that hostile text given as a value is only ever a
// bound value, and given as a field is refused.
func testInjection(t *testing.T, e *engine) {
	titles := map[string]string{}
	for _, r := range fixture()["posts"] {
		s, _ := r["title"].(string)
		titles[r["id"].(string)] = s
	}
	for _, p := range injections {
		lit := Literal{Kind: KindString, Str: p}.String()
		// Which posts each operator should find, worked out here.
		var eq, ne, contains []string
		for _, id := range ids(allPosts) {
			title := titles[id]
			if title == p {
				eq = append(eq, id)
			} else {
				ne = append(ne, id)
			}
			if title != "" && strings.Contains(strings.ToLower(title), strings.ToLower(p)) {
				contains = append(contains, id)
			}
		}
		cases := []struct {
			coll, filter string
			want         []string
		}{
			{"posts", "title = " + lit, eq},
			{"posts", "title != " + lit, ne},
			{"posts", "title ~ " + lit, contains},
			{"posts", "title in (" + lit + ", " + lit + ")", eq},
			{"posts", "meta.a = " + lit, nil},
			{"posts", "meta.tags ~ " + lit, nil},
			{"posts", "tags ~ " + lit, nil},
			{"posts", "tags in (" + lit + ")", nil},
			{"posts", "author.name = " + lit, nil},
			{"posts", "authors.name = " + lit, nil},
			{"docs", "title = " + lit, nil},
			{"docs", "a.b ~ " + lit, nil},
		}
		for _, tt := range cases {
			expr, err := Parse(tt.filter)
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.filter, err)
			}
			args := &sqldb.Args{Dialect: e.d}
			where, err := testEnv(e.d, tt.coll).Where(expr, args)
			if err != nil {
				t.Fatalf("%s: %v", tt.filter, err)
			}
			// The SQL does not depend on the text of the value.
			plain, _ := Parse(strings.ReplaceAll(tt.filter, lit, "'x'"))
			if s, err := testEnv(e.d, tt.coll).Where(plain, &sqldb.Args{Dialect: e.d}); err != nil || s != where {
				t.Errorf("%s: the SQL depends on the value:\n%s\n%s", tt.filter, where, s)
			}
			bound := func(v any) bool {
				s, _ := v.(string)
				return s == p || s == likePattern(p) || s == jsonText(Literal{Kind: KindString, Str: p})
			}
			if !slices.ContainsFunc(args.Values, bound) {
				t.Errorf("%s: the value is not among the args %#v", tt.filter, args.Values)
			}
			got, _ := e.ids(t, tt.coll, where, args, nil, 0)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s\n  sql: %s\n  got: %v\n want: %v", tt.filter, where, got, tt.want)
			}
		}
		// As a field, the text is refused before any SQL is written.
		for _, coll := range []string{"posts", "docs"} {
			env := testEnv(e.d, coll)
			for _, path := range []string{p, "meta." + p, "a." + p, p + ".a", "author." + p} {
				args := &sqldb.Args{Dialect: e.d}
				cmp := &Compare{Path: path, Op: Eq, Values: []Literal{{Kind: KindString, Str: "x"}}}
				var qe *Error
				if s, err := env.Where(cmp, args); !errors.As(err, &qe) {
					t.Errorf("%s: field %q compiled to %s, %v", coll, path, s, err)
				}
				if _, err := env.Order([]Sort{{Path: path}}); !errors.As(err, &qe) {
					t.Errorf("%s: sort by %q: %v", coll, path, err)
				}
			}
			if expr, err := Parse(p + " = 1"); err == nil {
				if s, err := env.Where(expr, &sqldb.Args{Dialect: e.d}); err == nil {
					t.Errorf("%s: filter %q compiled to %s", coll, p+" = 1", s)
				}
			}
			if sorts, err := ParseSort(p); err == nil {
				if keys, err := env.Order(sorts); err == nil {
					t.Errorf("%s: sort %q compiled to %s", coll, p, OrderBy(keys))
				}
			}
		}
	}
	// Every table is still whole.
	for coll, rows := range fixture() {
		var n int
		r, err := e.db.QueryContext(context.Background(), "SELECT COUNT(*) FROM "+e.d.Quote(coll))
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			if err := r.Scan(&n); err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if n != len(rows) {
			t.Errorf("%s has %d rows, want %d", coll, n, len(rows))
		}
	}
}
