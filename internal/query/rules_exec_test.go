package query

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestRulesSQLite(t *testing.T) {
	runRuleSuite(t, func(t *testing.T) *engine { return emptySQLite(t, t.TempDir()) })
}

func TestRulesPostgres(t *testing.T) {
	runRuleSuite(t, func(t *testing.T) *engine { return emptyPostgres(t) })
}

// runRuleSuite runs the behaviour of rules every engine must show, SQL and
// Eval agreeing on every record; open returns an empty database.
func runRuleSuite(t *testing.T, open func(*testing.T) *engine) {
	t.Run("rules", func(t *testing.T) { testRules(t, loadRules(t, open(t), ruleFixture())) })
	t.Run("random", func(t *testing.T) { testRuleAgreement(t, open(t)) })
}

var allNotes = "n1 n2 n3 n4 n5"

var ruleCases = []struct {
	coll, rule string
	req        *Request
	want       string
}{
	// owner only
	{"notes", "owner = @request.auth.id", anon, ""},
	{"notes", "owner = @request.auth.id", ann, "n1"},
	{"notes", "owner = @request.auth.id", bob, "n2"},
	{"notes", "@request.auth.id = owner", cy, "n4"},
	{"notes", "owner = @request.auth.id", super, ""},
	{"notes", "owner != @request.auth.id", anon, "n1 n2 n4 n5"},
	{"notes", "owner != @request.auth.id", ann, "n2 n3 n4 n5"},
	{"notes", "!(owner = @request.auth.id)", anon, allNotes},
	{"notes", "@request.auth.id != null && owner = @request.auth.id", ann, "n1"},
	{"notes", "@request.auth.id != null", anon, ""},
	{"notes", "@request.auth.id != null", bob, allNotes},
	{"notes", "@request.auth.id = null", anon, allNotes},
	{"notes", "@request.auth.collection = '_superusers' || owner = @request.auth.id", super, allNotes},
	{"notes", "@request.auth.collection = '_superusers' || owner = @request.auth.id", ann, "n1"},
	{"notes", "@request.auth.collection = null", anon, allNotes},
	// roles and relations
	{"notes", `@request.auth.role = "admin" || members ~ @request.auth.id`, ann, allNotes},
	{"notes", `@request.auth.role = "admin" || members ~ @request.auth.id`, bob, "n1 n4"},
	{"notes", `@request.auth.role = "admin" || members ~ @request.auth.id`, cy, "n2"},
	{"notes", `@request.auth.role = "admin" || members ~ @request.auth.id`, anon, ""},
	{"notes", `@request.auth.role = "admin" || members ~ @request.auth.id`, anon.withSchema(), ""},
	{"notes", "members !~ @request.auth.id", anon, allNotes},
	{"notes", "members !~ @request.auth.id", bob, "n2 n3 n5"},
	{"notes", "@request.auth.role in ('admin', 'editor') && status != 'archived'", bob, "n1 n2 n3 n5"},
	{"notes", "@request.auth.role in ('admin', 'editor')", cy, ""},
	{"notes", "owner.role = 'admin'", anon, "n1"},
	{"notes", "owner.team = @request.auth.team", ann, "n1"},
	{"notes", "owner.team = @request.auth.team", cy, ""},
	{"notes", "owner.team != @request.auth.team", cy, "n1 n2"},
	{"notes", "owner.team.name = 'red' && @request.auth.verified = true", ann, "n1"},
	{"notes", "owner.team.name = 'red' && @request.auth.verified = true", bob, ""},
	{"notes", "members.name = @request.auth.name", bob, "n1 n4"},
	{"notes", "owner.friends ~ @request.auth.id", bob, "n1 n4"},
	{"notes", "@request.auth.friends ~ 'u2'", ann, allNotes},
	{"notes", "@request.auth.friends ~ 'u2'", bob, ""},
	{"notes", "@request.auth.friends = null", bob, allNotes},
	{"notes", "@request.auth.age >= 18 || owner = @request.auth.id", bob, "n2"},
	{"notes", "@request.auth.age >= 18", cy, ""},
	{"notes", "@request.auth.age < 18", cy, ""},
	{"notes", "@request.auth.age != 30", cy, allNotes},
	{"notes", "owner.age < @request.auth.age", ann, "n2"},
	// body checks
	{"notes", "@request.body.owner = @request.auth.id", ann.with(map[string]any{"owner": "u1"}, nil, "POST"), allNotes},
	{"notes", "@request.body.owner = @request.auth.id", ann.with(map[string]any{"owner": "u2"}, nil, "POST"), ""},
	{"notes", "@request.body.owner = @request.auth.id", ann.with(nil, nil, "POST"), ""},
	{"notes", "@request.body.owner = @request.auth.id", anon.with(map[string]any{"owner": "u1"}, nil, "POST"), ""},
	{"notes", "@request.body.owner = @request.auth.id", anon.with(map[string]any{"owner": nil}, nil, "POST"), ""},
	{"notes", "@request.body.owner = null || @request.body.owner = @request.auth.id", ann.with(map[string]any{"title": "x"}, nil, "PATCH"), allNotes},
	{"notes", "owner = @request.auth.id && @request.body.owner = null", ann.with(map[string]any{"owner": "u2"}, nil, "PATCH"), ""},
	{"notes", "owner = @request.auth.id && @request.body.owner = null", ann.with(map[string]any{"title": "x"}, nil, "PATCH"), "n1"},
	{"notes", "@request.body.views < views", ann.with(map[string]any{"views": 7.0}, nil, "PATCH"), "n1"},
	{"notes", "@request.body.views <= views", ann.with(map[string]any{"views": 7.0}, nil, "PATCH"), "n1 n4"},
	{"notes", "@request.body.views < views", ann.with(nil, nil, "PATCH"), ""},
	{"notes", "@request.body.title != title", ann.with(map[string]any{"title": "orphan"}, nil, "PATCH"), "n1 n2 n4 n5"},
	{"notes", "@request.body.title != title", ann.with(nil, nil, "PATCH"), "n1 n2 n3 n5"},
	{"notes", "@request.body.tags ~ 'go' && tags ~ 'go'", ann.with(map[string]any{"tags": []string{"go", "web"}}, nil, "PATCH"), "n1"},
	{"notes", "@request.body.tags !~ 'go'", ann.with(map[string]any{"tags": []string{}}, nil, "PATCH"), allNotes},
	{"notes", "@request.body.done != done", ann.with(map[string]any{"done": true}, nil, "PATCH"), "n2 n3 n4 n5"},
	{"notes", "@request.body.meta != null", ann.with(map[string]any{"meta": raw(`{"a":1}`)}, nil, "PATCH"), allNotes},
	{"notes", "@request.body.meta ~ 1", ann.with(map[string]any{"meta": raw(`[1,2]`)}, nil, "PATCH"), allNotes},
	{"notes", "@request.body.status = @request.auth.role", ann.with(map[string]any{"status": "live"}, nil, "PATCH"), ""},
	{"notes", "@request.auth.friends ~ @request.body.owner", ann.with(map[string]any{"owner": "u2"}, nil, "POST"), allNotes},
	{"notes", "@request.auth.friends ~ @request.body.owner", ann.with(nil, nil, "POST"), ""},
	{"notes", "@request.auth.friends !~ @request.body.owner", ann.with(nil, nil, "POST"), allNotes},
	// @now and datetimes
	{"notes", "due < @now", ann, "n1"},
	{"notes", "@now < due", ann, "n2"},
	{"notes", "due = @now", ann, ""},
	{"notes", "due != @now", ann, allNotes},
	{"notes", "@now > '2026-01-01' && @now < '2027-01-01'", anon, allNotes},
	{"notes", "@now > created", anon, allNotes},
	{"notes", "@request.auth.born < @now && owner = @request.auth.id", bob, "n2"},
	{"notes", "owner.born > @request.body.due", ann.with(map[string]any{"due": day("2000-01-01")}, nil, "POST"), "n2"},
	// query and method
	{"notes", "title ~ @request.query.q", ann.with(nil, map[string]string{"q": "PLAN"}, "GET"), "n1"},
	{"notes", "title ~ @request.query.q", ann.with(nil, map[string]string{"q": "'s"}, "GET"), "n1 n2"},
	{"notes", "title ~ @request.query.q", ann.with(nil, map[string]string{"q": "%"}, "GET"), ""},
	{"notes", "title ~ @request.query.q", ann.with(nil, map[string]string{"q": ""}, "GET"), "n1 n2 n3 n5"},
	{"notes", "title ~ @request.query.q", ann, ""},
	{"notes", "title !~ @request.query.q", ann, allNotes},
	{"notes", "title = @request.query.q", ann, ""},
	{"notes", "title != @request.query.q", ann, "n1 n2 n3 n5"},
	{"notes", "title = @request.query.q", ann.with(nil, map[string]string{"q": "' OR 1=1 --"}, "GET"), ""},
	{"notes", "@request.query.q = ''", ann.with(nil, map[string]string{"q": ""}, "GET"), allNotes},
	{"notes", "@request.query.q = ''", ann, ""},
	{"notes", "@request.method = 'GET' && owner = @request.auth.id", ann, "n1"},
	{"notes", "@request.method = 'GET' && owner = @request.auth.id", ann.with(nil, nil, "DELETE"), ""},
	{"notes", "@request.method != 'GET'", anon, allNotes},
	{"notes", "status = @request.query.s || title = @request.query.t", ann.with(nil, map[string]string{"s": "draft"}, "GET"), "n2"},
	// json paths
	{"notes", "meta.public = true || owner = @request.auth.id", bob, "n1 n2"},
	{"notes", "meta.n = @request.body.views", ann.with(map[string]any{"views": 1.0}, nil, "POST"), "n1"},
	{"notes", "meta.n = @request.auth.name", ann, ""},
	{"notes", "meta.n != @request.query.n", ann.with(nil, map[string]string{"n": "7"}, "GET"), "n1 n2 n3 n5"},
	// documents
	{"docs", "owner = @request.auth.id", ann, "d1"},
	{"docs", "owner = @request.auth.id", anon, ""},
	{"docs", "owner != @request.auth.id", anon, "d1 d2"},
	{"docs", "public = true || owner = @request.auth.id", bob, "d1 d2"},
	{"docs", "@request.body.owner = @request.auth.id", bob.with(map[string]any{"owner": "u2"}, nil, "POST"), "d1 d2 d3"},
	{"docs", "@request.auth.id = @request.body.owner", bob.with(map[string]any{"owner": "u1"}, nil, "POST"), ""},
	{"docs", "@request.body.n > 2", bob.with(map[string]any{"n": json.Number("3")}, nil, "POST"), "d1 d2 d3"},
	{"docs", "created < @now", anon, "d1 d2 d3"},
}

// withSchema is an anonymous request that knows the auth collection, so
// that @request.auth.<field> are nulls of known types.
func (r *Request) withSchema() *Request {
	c := *r
	c.AuthSchema = ruleCollections()["users"]
	return &c
}

func testRules(t *testing.T, re *ruleEngine) {
	for _, tt := range ruleCases {
		t.Run(tt.coll+": "+tt.rule, func(t *testing.T) {
			e, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got, err := re.run(t, tt.coll, e, tt.req)
			if err != nil {
				t.Fatalf("%s: %v", describe(tt.req), err)
			}
			if want := ids(tt.want); !slices.Equal(got, want) {
				t.Errorf("%s\n  got: %v\n want: %v", describe(tt.req), got, want)
			}
		})
	}
	// A request value that is not text fails both ways alike.
	e, _ := Parse("title = @request.query.q")
	_, err := re.run(t, "notes", e, ann.with(nil, map[string]string{"q": "a\x00b"}, "GET"))
	if !errors.Is(err, ErrInvalidValue) {
		t.Errorf("NUL in a query parameter: %v", err)
	}
}
