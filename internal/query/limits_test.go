package query

import (
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

// fill repeats term, joined by sep, as often as fits in the filter limit.
func fill(term, sep string) string {
	var b strings.Builder
	b.WriteString(term)
	for b.Len()+len(sep)+len(term) <= MaxLength {
		b.WriteString(sep + term)
	}
	return b.String()
}

// limitCases are filters at the limits of the language; each must compile
// and run on every engine.
var limitCases = []struct{ coll, filter string }{
	{"posts", strings.Repeat("!", MaxDepth) + "title = 'a'"},
	{"posts", strings.Repeat("(", MaxDepth) + "title = 'a'" + strings.Repeat(")", MaxDepth)},
	{"posts", strings.Repeat("!(", MaxDepth/2) + "meta.a ~ 'a'" + strings.Repeat(")", MaxDepth/2)},
	{"posts", strings.Repeat("!(author.name = 'x' || ", MaxDepth/2) + "title = 'a'" + strings.Repeat(")", MaxDepth/2)},
	{"posts", fill("id='x'", "||")},
	{"posts", fill("id='x'", "&&")},
	{"posts", fill("id=''", "||")},
	{"posts", fill("!id=''", "&&")},
	{"posts", fill("id='x'||id='y'", "&&")},
	{"docs", fill("a=1", "&&")},
	{"docs", fill("a=1", "||")},
	{"docs", fill("a~'x'", "||")},
	{"posts", fill("author.friends.friends.name='x'", "||")},
	{"posts", fill("authors.friends.team.name!='x'", "&&")},
	{"posts", "meta.a in (" + strings.Repeat("1,", MaxInItems-1) + "1)"},
	{"posts", "tags not in (" + strings.Repeat("'a',", MaxInItems-1) + "'a')"},
	{"posts", "title ~ '" + strings.Repeat("%_\\\\", (MaxLength-20)/4) + "'"},
}

func testLimits(t *testing.T, e *engine) {
	for _, tt := range limitCases {
		t.Run(tt.filter[:min(len(tt.filter), 40)], func(t *testing.T) {
			if len(tt.filter) > MaxLength {
				t.Fatalf("filter of %d bytes", len(tt.filter))
			}
			expr, err := Parse(tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			args := &sqldb.Args{Dialect: e.d}
			where, err := testEnv(e.d, tt.coll).Where(expr, args)
			if err != nil {
				t.Fatal(err)
			}
			e.ids(t, tt.coll, where, args, nil, 0)
		})
	}
}
