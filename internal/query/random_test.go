package query

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

var randomPaths = map[string][]string{
	"posts": {"id", "created", "title", "views", "done", "published", "status", "tags", "author", "authors", "meta",
		"meta.n", "meta.a.b", "meta.tags", "meta.list.0", "meta.flag", "author.name", "author.age", "authors.name",
		"author.team.name", "authors.friends.name", "site"},
	"docs": {"id", "created", "title", "score", "tags", "meta.a.b", "meta.a", "flag", "list.0.x", "n.0"},
}

var randomValues = []string{"'go'", "'x'", "''", "'Ann'", "'a%b'", "'live'", "'CAFÉ'", "1", "10", "2.5", "-3", "0", "true", "false", "null",
	"'2026-01-05'", "'2026-01-05T00:00:00.000Z'", "'u1'", "'u2'"}

var randomOps = []string{"=", "!=", ">", ">=", "<", "<=", "~", "!~", "in", "not in"}

// randomFilter writes a random filter over the paths of coll.
func randomFilter(r *rand.Rand, coll string, depth int) string {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(3) {
		case 0:
			return "!(" + randomFilter(r, coll, depth-1) + ")"
		case 1:
			return "(" + randomFilter(r, coll, depth-1) + " && " + randomFilter(r, coll, depth-1) + ")"
		default:
			return "(" + randomFilter(r, coll, depth-1) + " || " + randomFilter(r, coll, depth-1) + ")"
		}
	}
	paths := randomPaths[coll]
	path := paths[r.IntN(len(paths))]
	op := randomOps[r.IntN(len(randomOps))]
	if op == "in" || op == "not in" {
		items := make([]string, 1+r.IntN(3))
		for i := range items {
			items[i] = randomValues[r.IntN(len(randomValues))]
		}
		return path + " " + op + " (" + strings.Join(items, ", ") + ")"
	}
	return path + " " + op + " " + randomValues[r.IntN(len(randomValues))]
}

// testRandom runs random filters that type-check and checks that each runs,
// that its negation selects exactly the other rows, and that After
// continues its first row in a random order.
func testRandom(t *testing.T, e *engine) {
	r := rand.New(rand.NewPCG(1, 2))
	sorts := []string{"", "-views", "title,-done", "meta.n", "-meta.a.b,views", "-published", "status,author"}
	docSorts := []string{"", "score", "-title", "meta.a.b,-score", "flag,-created"}
	ran := 0
	for i := 0; i < 3000 && ran < 600; i++ {
		coll := "posts"
		if i%4 == 3 {
			coll = "docs"
		}
		env := testEnv(e.d, coll)
		filter := randomFilter(r, coll, 3)
		expr, err := Parse(filter)
		if err != nil {
			t.Fatalf("Parse(%q): %v", filter, err)
		}
		args := &sqldb.Args{Dialect: e.d}
		where, err := env.Where(expr, args)
		if err != nil {
			continue // a type error
		}
		ran++
		got, _ := e.ids(t, coll, where, args, nil, 0)
		nargs := &sqldb.Args{Dialect: e.d}
		nwhere, err := env.Where(&Not{X: expr}, nargs)
		if err != nil {
			t.Fatal(err)
		}
		neg, _ := e.ids(t, coll, nwhere, nargs, nil, 0)
		all := append(slices.Clone(got), neg...)
		slices.Sort(all)
		if want := fixtureIDs(coll); !slices.Equal(all, want) {
			t.Errorf("%s: %v and its negation %v do not split %v", filter, got, neg, want)
		}
		ss := sorts
		if coll == "docs" {
			ss = docSorts
		}
		parsed, err := ParseSort(ss[i%len(ss)])
		if err != nil {
			t.Fatal(err)
		}
		keys, err := env.Order(parsed)
		if err != nil {
			t.Fatal(err)
		}
		ordered, vals := e.ids(t, coll, where, args, keys, 0)
		if len(ordered) == 0 {
			continue
		}
		next := &sqldb.Args{Dialect: e.d, Values: slices.Clone(args.Values)}
		after, err := env.After(keys, roundTrip(t, vals[0]), next)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := e.ids(t, coll, where+" AND "+after, next, keys, 0)
		if !slices.Equal(rest, ordered[1:]) {
			t.Errorf("%s sorted %s: after %s got %v, want %v", filter, OrderBy(keys), ordered[0], rest, ordered[1:])
		}
	}
	t.Logf("%d random filters ran", ran)
	if ran < 300 {
		t.Errorf("only %d random filters type-checked", ran)
	}
}

func fixtureIDs(coll string) []string {
	var out []string
	for _, r := range fixture()[coll] {
		out = append(out, r["id"].(string))
	}
	slices.Sort(out)
	return out
}
