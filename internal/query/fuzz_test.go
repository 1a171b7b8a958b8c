package query

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

func FuzzParse(f *testing.F) {
	for _, tt := range filterCases {
		f.Add(tt.filter)
	}
	for _, tt := range compileCases {
		f.Add(tt.filter)
	}
	for _, tt := range ruleCases {
		f.Add(tt.rule)
	}
	f.Add(`a = 'x\'y' || !(b in (1, -2.5e3, true, null)) && c not in ("q")`)
	f.Add("((((a = 1))))")
	f.Add("5 < views")
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q): %v is not an *Error", src, err)
			}
			if qe.Pos < 0 || qe.Pos > len(src) {
				t.Fatalf("Parse(%q): position %d is outside the source", src, qe.Pos)
			}
			return
		}
		if e == nil {
			if strings.Trim(src, " \t\r\n") != "" {
				t.Fatalf("Parse(%q) = nil", src)
			}
			return
		}
		// The printed form parses back to itself, unless printing made it
		// longer or deeper than the limits.
		s := e.String()
		e2, err := Parse(s)
		if err != nil {
			var qe *Error
			if errors.As(err, &qe) && (strings.Contains(qe.Msg, "longer than") || strings.Contains(qe.Msg, "nests deeper")) {
				return
			}
			t.Fatalf("Parse(%q) = %s, which does not parse: %v", src, s, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("Parse(%q) = %s, which parses to %s", src, s, s2)
		}
	})
}

func FuzzParseSort(f *testing.F) {
	for _, tt := range keysetCases {
		f.Add(tt.sort)
	}
	f.Add("-a, +b.c ,d.0")
	f.Fuzz(func(t *testing.T, src string) {
		sorts, err := ParseSort(src)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("ParseSort(%q): %v is not an *Error", src, err)
			}
			if qe.Pos < 0 || qe.Pos > len(src) {
				t.Fatalf("ParseSort(%q): position %d is outside the source", src, qe.Pos)
			}
			return
		}
		for _, s := range sorts {
			if s.Path == "" || s.Pos < 0 || s.Pos+len(s.Path) > len(src) || src[s.Pos:s.Pos+len(s.Path)] != s.Path {
				t.Fatalf("ParseSort(%q): bad term %+v", src, s)
			}
			if _, err := splitPath(s.Path, s.Pos); err != nil {
				t.Fatalf("ParseSort(%q): term %+v: %v", src, s, err)
			}
		}
	})
}

// FuzzSQLite compiles filters and sorts and runs them on SQLite: what
// compiles must run, and a page continued with After from the first row
// must hold exactly the rows after it.
func FuzzSQLite(f *testing.F) {
	for _, tt := range filterCases {
		f.Add(tt.filter, "", tt.coll == "docs")
	}
	for _, tt := range keysetCases {
		f.Add("id != 'x'", tt.sort, tt.coll == "docs")
	}
	f.Add("meta.a.b ~ 'x' || !(author.team.name = null)", "-views,meta.n", false)
	f.Add("a.b.0 in (1, 'x', true)", "-a.b,c", true)
	e := openSQLite(f, f.TempDir())
	f.Fuzz(func(t *testing.T, filter, sort string, docs bool) {
		coll := "posts"
		if docs {
			coll = "docs"
		}
		env := testEnv(sqldb.SQLite, coll)
		expr, err := Parse(filter)
		if err != nil {
			return
		}
		args := &sqldb.Args{Dialect: sqldb.SQLite}
		where, err := env.Where(expr, args)
		if err != nil {
			var qe *Error
			if !errors.As(err, &qe) || qe.Pos < 0 || qe.Pos > len(filter) {
				t.Fatalf("Where(%q): %v", filter, err)
			}
			return
		}
		sorts, err := ParseSort(sort)
		if err != nil {
			sorts = nil
		}
		keys, err := env.Order(sorts)
		if err != nil {
			if keys, err = env.Order(nil); err != nil {
				t.Fatal(err)
			}
		}
		all, vals := e.ids(t, coll, where, args, keys, 0)
		if len(all) == 0 {
			return
		}
		next := &sqldb.Args{Dialect: sqldb.SQLite, Values: slices.Clone(args.Values)}
		after, err := env.After(keys, roundTrip(t, vals[0]), next)
		if err != nil {
			t.Fatalf("After(%v): %v", vals[0], err)
		}
		if where != "" {
			after = where + " AND " + after
		}
		rest, _ := e.ids(t, coll, after, next, keys, 0)
		if !slices.Equal(rest, all[1:]) {
			t.Fatalf("filter %q sort %q: after %v got %v, want %v", filter, sort, all[0], rest, all[1:])
		}
	})
}
