package query

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

func TestSQLite(t *testing.T) { runSuite(t, openSQLite(t, t.TempDir())) }

func TestPostgres(t *testing.T) { runSuite(t, openPostgres(t)) }

// runSuite runs the behaviour every engine must show on the fixture.
func runSuite(t *testing.T, e *engine) {
	t.Run("filters", func(t *testing.T) { testFilters(t, e) })
	t.Run("keyset", func(t *testing.T) { testKeyset(t, e) })
	t.Run("after errors", func(t *testing.T) { testAfterErrors(t, e) })
	t.Run("injection", func(t *testing.T) { testInjection(t, e) })
	t.Run("limits", func(t *testing.T) { testLimits(t, e) })
	t.Run("random", func(t *testing.T) { testRandom(t, e) })
	t.Run("eval", func(t *testing.T) { testEvalAgreement(t, e) })
}

func ids(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

var allPosts = "p01 p02 p03 p04 p05 p06 p07 p08"

var filterCases = []struct {
	coll, filter, want string
}{
	// text
	{"posts", "title ~ 'go'", "p01 p04"},
	{"posts", "title !~ 'go'", "p02 p03 p05 p06 p07 p08"},
	{"posts", "title ~ '100%'", "p02"},
	{"posts", "title ~ '%'", "p02"},
	{"posts", "title ~ '_'", "p03 p07"},
	{"posts", `title ~ '\\'`, "p07"},
	{"posts", `title ~ '\\_'`, "p07"},
	{"posts", `title = "it's a \"quote\""`, "p06"},
	{"posts", `title = 'it\'s a "quote"'`, "p06"},
	{"posts", "title ~ 'café'", "p08"},
	{"posts", "title = 'Go in practice'", "p01"},
	{"posts", "title = 'go in practice'", ""},
	{"posts", "title != 'Go in practice'", "p02 p03 p04 p05 p06 p07 p08"},
	{"posts", "title in ('GOLANG tips', 'web_dev notes', 'nope')", "p03 p04"},
	{"posts", "title not in ('GOLANG tips', 'web_dev notes')", "p01 p02 p05 p06 p07 p08"},
	{"posts", "title = null", "p05"},
	{"posts", "title != null", "p01 p02 p03 p04 p06 p07 p08"},
	{"posts", "'Go in practice' = title", "p01"},
	{"posts", "site ~ 'example'", "p01"},
	{"posts", "contact = 'ann@example.com'", "p01"},
	// numbers
	{"posts", "views > 5", "p01 p02 p06 p07"},
	{"posts", "views >= 10 && views < 1000", "p01 p02 p06"},
	{"posts", "views = 0", "p04"},
	{"posts", "views = 250.5", "p02"},
	{"posts", "views = 1e6", "p07"},
	{"posts", "views != 10", "p02 p03 p04 p05 p07 p08"},
	{"posts", "views < 0", "p05"},
	{"posts", "views <= -3", "p05"},
	{"posts", "views in (10, 5)", "p01 p06 p08"},
	{"posts", "views not in (10, 5)", "p02 p03 p04 p05 p07"},
	{"posts", "10 <= views", "p01 p02 p06 p07"},
	{"posts", "views = null", "p03"},
	// bools
	{"posts", "done = true", "p01 p05 p06"},
	{"posts", "done = false", "p02 p04 p07"},
	{"posts", "done != true", "p02 p03 p04 p07 p08"},
	{"posts", "done = null", "p03 p08"},
	{"posts", "done in (true)", "p01 p05 p06"},
	// datetimes
	{"posts", "published = '2026-01-05'", "p01 p05 p08"},
	{"posts", "published > '2026-01-05T00:00:00Z'", "p02 p06 p07"},
	{"posts", "published < '2026-01-01'", "p04"},
	{"posts", "published >= '2026-02-01T12:00:00.5Z'", "p02 p06"},
	{"posts", "published = '2026-02-01T13:00:00.500+01:00'", "p02"},
	{"posts", "published > '2026-02-01T12:00:00.499999Z' && published < '2026-02-01T12:00:00.501Z'", "p02"},
	{"posts", "published in ('2026-01-10', '2026-03-01')", "p06 p07"},
	{"posts", "published = null", "p03"},
	{"posts", "published != null", "p01 p02 p04 p05 p06 p07 p08"},
	{"posts", "created = '2026-01-03'", "p03 p04"},
	{"posts", "created < '2026-01-01T01:00:00Z'", "p01"},
	{"posts", "updated > '2026-01-01T07:00:00Z'", "p03 p04 p08"},
	// selects
	{"posts", "status = 'live'", "p01 p05 p07"},
	{"posts", "status in ('draft', 'archived')", "p02 p04 p06"},
	{"posts", "status != 'live'", "p02 p03 p04 p06 p08"},
	{"posts", "status ~ 'ive'", "p01 p04 p05 p07"},
	// lists
	{"posts", "tags ~ 'go'", "p01 p04 p08"},
	{"posts", "tags !~ 'go'", "p02 p03 p05 p06 p07"},
	{"posts", "tags ~ 'a%b'", "p06"},
	{"posts", "tags ~ 'a'", ""},
	{"posts", "tags ~ 'GO'", ""},
	{"posts", "tags in ('web', 'sql')", "p01 p02 p04 p07"},
	{"posts", "tags not in ('go')", "p02 p03 p05 p06 p07"},
	{"posts", "tags = null", "p03 p05"},
	{"posts", "tags != null", "p01 p02 p04 p06 p07 p08"},
	{"posts", "authors ~ 'u2'", "p01 p06"},
	// single relations
	{"posts", "author = 'u1'", "p01 p07"},
	{"posts", "author = null", "p03 p08"},
	{"posts", "author.name = 'Ann'", "p01 p07"},
	{"posts", "author.name != 'Ann'", "p02 p03 p04 p05 p06 p08"},
	{"posts", "author.age > 20", "p01 p04 p07"},
	{"posts", "author.name = null", "p03 p05 p06 p08"},
	{"posts", "author.name != null", "p01 p02 p04 p07"},
	{"posts", "author.id = 'u2'", "p02"},
	{"posts", "author.team.name = 'red'", "p01 p07"},
	{"posts", "author.team.name != 'red'", "p02 p03 p04 p05 p06 p08"},
	{"posts", "author.friends ~ 'u2'", "p01 p04 p07"},
	{"posts", "author.friends.friends.name = 'bob'", "p04"},
	// multiple relations
	{"posts", "authors.name ~ 'b'", "p01 p06"},
	{"posts", "authors.age >= 41", "p02 p08"},
	{"posts", "authors.name = null", "p03 p05 p07"},
	{"posts", "authors.name !~ 'b'", "p02 p03 p04 p05 p07 p08"},
	{"posts", "authors.friends.name = 'bob'", "p01 p02 p04 p08"},
	{"posts", "authors.team.name in ('red', 'blue')", "p01 p04 p06"},
	{"users", "team.name = 'red'", "u1"},
	{"users", "team.name = null", "u3 u4"},
	{"users", "friends ~ 'u2'", "u1 u3"},
	{"users", "friends = null", "u2 u4"},
	{"users", "friends.name = 'Ann'", "u3"},
	{"users", "friends.friends.name = 'bob'", "u3"},
	// json fields
	{"posts", "meta.n = 1", "p01"},
	{"posts", "meta.n > 1", "p02"},
	{"posts", "meta.n >= 1", "p01 p02"},
	{"posts", "meta.n = '7'", "p04"},
	{"posts", "meta.n < 'z'", "p04"},
	{"posts", "meta.n = null", "p03 p05 p06 p07 p08"},
	{"posts", "meta.n != null", "p01 p02 p04"},
	{"posts", "meta.n != 1", "p02 p03 p04 p05 p06 p07 p08"},
	{"posts", "meta.n in (1, '7')", "p01 p04"},
	{"posts", "meta.n not in (1, '7')", "p02 p03 p05 p06 p07 p08"},
	{"posts", "meta.a.b = 'x'", "p01"},
	{"posts", "meta.a.b = 2", "p05"},
	{"posts", "meta.flag = true", "p01"},
	{"posts", "meta.flag = false", "p04"},
	{"posts", "meta.flag != true", "p02 p03 p04 p05 p06 p07 p08"},
	{"posts", "meta.flag = 1", ""},
	{"posts", "meta.tags ~ 'x'", "p01 p02 p04"},
	{"posts", "meta.tags ~ 'X'", "p02"},
	{"posts", "meta.tags ~ 2", "p04"},
	{"posts", "meta.tags ~ true", ""},
	{"posts", "meta.tags !~ 'x'", "p03 p05 p06 p07 p08"},
	{"posts", "meta.list.0 = 'z'", "p07"},
	{"posts", "meta.list.1 = 'q'", "p07"},
	{"posts", "meta.nested.deep.k = 'v'", "p07"},
	{"posts", "meta.ARR ~ 'x'", ""},
	{"posts", "meta = null", "p03"},
	{"posts", "meta != null", "p01 p02 p04 p05 p06 p07 p08"},
	{"posts", "meta ~ 2", "p06"},
	{"posts", "meta ~ 'string'", "p08"},
	{"posts", "meta = 'just a string'", "p08"},
	// documents
	{"docs", "title = 'alpha'", "d1"},
	{"docs", "title ~ 'a'", "d1 d2 d3 d5"},
	{"docs", "title ~ 'BET'", "d2"},
	{"docs", "title = null", "d4 d6"},
	{"docs", "score > 2", "d1 d4 d5"},
	{"docs", "score = 3", "d1 d5"},
	{"docs", "score = 'high'", "d2"},
	{"docs", "score = null", "d3 d6"},
	{"docs", "score in (3, 'high')", "d1 d2 d5"},
	{"docs", "tags ~ 'b'", "d1 d4"},
	{"docs", "tags = null", "d3 d5 d6"},
	{"docs", "meta.a.b = 1", "d1"},
	{"docs", "meta.a.b = '1'", "d2"},
	{"docs", "meta.a = null", "d3 d4 d5 d6"},
	{"docs", "flag = false", "d3"},
	{"docs", "flag != true", "d2 d3 d4 d5 d6"},
	{"docs", "list.0.x = 1", "d5"},
	{"docs", "id = 'd3'", "d3"},
	{"docs", "created >= '2026-01-01T04:00:00Z'", "d5 d6"},
	{"docs", "title.x = 1", ""},
	{"docs", "data = 1", ""},
	// logic
	{"posts", "views = 10 || done = false && status = 'live'", "p01 p06 p07"},
	{"posts", "(views = 10 || done = false) && status = 'live'", "p01 p07"},
	{"posts", "done = false && status = 'live' || views = 10", "p01 p06 p07"},
	{"posts", "!(views = 10) && title ~ 'o'", "p03 p04 p08"},
	{"posts", "!views = 10 && title ~ 'o'", "p03 p04 p08"},
	{"posts", "!(title = 'x' || views > 100)", "p01 p03 p04 p05 p06 p08"},
	{"posts", "!(title = 'x' || views > 100) && !(meta.n = 1)", "p03 p04 p05 p06 p08"},
	{"posts", "!!(done = true)", "p01 p05 p06"},
	{"posts", "!(done = true)", "p02 p03 p04 p07 p08"},
	{"posts", "!(!(views > 5) || tags ~ 'go')", "p02 p06 p07"},
	{"posts", "id = 'p03' || id = 'p04' && views = 0", "p03 p04"},
	{"posts", "id in ('p01', 'p02', 'zz') && !(id = 'p02')", "p01"},
	{"posts", "id ~ '0'", allPosts},
	{"posts", "orphan = null", allPosts},
}

func testFilters(t *testing.T, e *engine) {
	for _, tt := range filterCases {
		t.Run(tt.coll+": "+tt.filter, func(t *testing.T) {
			expr, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			args := &sqldb.Args{Dialect: e.d}
			where, err := testEnv(e.d, tt.coll).Where(expr, args)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := e.ids(t, tt.coll, where, args, nil, 0)
			if want := ids(tt.want); !slices.Equal(got, want) {
				t.Errorf("%s\n  sql: %s\n args: %#v\n  got: %v\n want: %v", tt.filter, where, args.Values, got, want)
			}
		})
	}
}

var keysetCases = []struct {
	coll, sort string
	want       string // the whole order, when it does not hang on collation
}{
	{"posts", "", "p01 p02 p03 p04 p05 p06 p07 p08"},
	{"posts", "-id", "p08 p07 p06 p05 p04 p03 p02 p01"},
	{"posts", "views", "p03 p05 p04 p08 p01 p06 p02 p07"},
	{"posts", "-views", "p07 p02 p06 p01 p08 p04 p05 p03"},
	{"posts", "-published,title", "p06 p02 p07 p05 p01 p08 p04 p03"},
	{"posts", "created", "p01 p02 p05 p06 p07 p08 p03 p04"},
	{"posts", "-created", "p04 p03 p08 p07 p06 p05 p02 p01"},
	{"posts", "-created,id", "p03 p04 p08 p07 p06 p05 p02 p01"},
	{"posts", "done,-views", "p08 p03 p07 p02 p04 p06 p01 p05"},
	{"posts", "-done,views", "p05 p01 p06 p04 p02 p07 p03 p08"},
	{"posts", "title", ""},
	{"posts", "-title", ""},
	{"posts", "status,-done,views", ""},
	{"posts", "-status,title", ""},
	{"posts", "author,-views", ""},
	{"posts", "meta.n", ""},
	{"posts", "-meta.n", ""},
	{"posts", "meta.a.b,-views", ""},
	{"posts", "meta,-id", ""},
	{"posts", "-updated,views", ""},
	{"users", "age", "u2 u4 u1 u3"},
	{"users", "-age", "u3 u1 u4 u2"},
	{"users", "-name", ""},
	{"users", "team,age", ""},
	{"docs", "score", ""},
	{"docs", "-score", ""},
	{"docs", "title,-score", ""},
	{"docs", "-meta.a.b", ""},
	{"docs", "flag,-created", ""},
	{"docs", "tags.0", ""},
}

// testKeyset pages through every row with each order and page size,
// continuing each page with After from the last row's key values as a
// client's cursor carries them.
func testKeyset(t *testing.T, e *engine) {
	for _, tt := range keysetCases {
		t.Run(tt.coll+": "+tt.sort, func(t *testing.T) {
			env := testEnv(e.d, tt.coll)
			sorts, err := ParseSort(tt.sort)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := env.Order(sorts)
			if err != nil {
				t.Fatal(err)
			}
			all, _ := e.ids(t, tt.coll, "", &sqldb.Args{Dialect: e.d}, keys, 0)
			if tt.want != "" && !slices.Equal(all, ids(tt.want)) {
				t.Errorf("order %s: got %v, want %s", OrderBy(keys), all, tt.want)
			}
			total := len(fixture()[tt.coll])
			if seen := uniq(all); seen != total {
				t.Fatalf("full list has %d distinct ids of %d: %v", seen, total, all)
			}
			for size := 1; size <= 3; size++ {
				var got []string
				var last []any
				for page := 0; page <= total; page++ {
					args := &sqldb.Args{Dialect: e.d}
					where := ""
					if last != nil {
						where, err = env.After(keys, roundTrip(t, last), args)
						if err != nil {
							t.Fatalf("After(%v): %v", last, err)
						}
					}
					pageIDs, vals := e.ids(t, tt.coll, where, args, keys, size)
					got = append(got, pageIDs...)
					if len(pageIDs) < size {
						break
					}
					last = vals[len(vals)-1]
				}
				if !slices.Equal(got, all) {
					t.Errorf("pages of %d: got %v, want %v", size, got, all)
				}
			}
		})
	}
}

func uniq(ids []string) int {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return len(m)
}

func testAfterErrors(t *testing.T, e *engine) {
	env := testEnv(e.d, "posts")
	keys, err := env.Order([]Sort{{Path: "views"}, {Path: "published", Desc: true}, {Path: "meta.n"}})
	if err != nil {
		t.Fatal(err)
	}
	good := []any{1.0, "2026-01-05T00:00:00.000Z", nil, "p01"}
	args := &sqldb.Args{Dialect: e.d}
	where, err := env.After(keys, good, args)
	if err != nil {
		t.Fatal(err)
	}
	e.ids(t, "posts", where, args, keys, 0)
	bad := [][]any{
		nil,
		{1.0, "2026-01-05T00:00:00.000Z", nil},
		{1.0, "2026-01-05T00:00:00.000Z", nil, "p01", "extra"},
		{"ten", "2026-01-05T00:00:00.000Z", nil, "p01"},
		{1.0, "yesterday", nil, "p01"},
		{1.0, 5.0, nil, "p01"},
		{1.0, "2026-01-05T00:00:00.000Z", nil, nil},
		{1.0, "2026-01-05T00:00:00.000Z", nil, 7.0},
		{1.0, "2026-01-05T00:00:00.000Z", map[string]any{}, "p01"},
		{true, "2026-01-05T00:00:00.000Z", nil, "p01"},
	}
	for _, last := range bad {
		args := &sqldb.Args{Dialect: e.d}
		if s, err := env.After(keys, last, args); err == nil {
			t.Errorf("After(%v) = %s, want an error", last, s)
		} else if len(args.Values) != 0 {
			t.Errorf("After(%v) failed but added args %v", last, args.Values)
		}
	}
	if e.d == sqldb.Postgres {
		if _, err := env.After(keys, []any{1.0, "2026-01-05T00:00:00Z", "{not json", "p01"}, &sqldb.Args{Dialect: e.d}); err == nil {
			t.Error("After accepted JSON text that is not JSON")
		}
	}
	var qe *Error
	if _, err := env.Order([]Sort{{Path: "tags"}}); !errors.As(err, &qe) {
		t.Errorf("sort by a list: %v", err)
	}
}
