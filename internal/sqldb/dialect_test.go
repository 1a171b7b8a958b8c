package sqldb

import (
	"fmt"
	"strings"
	"testing"
)

func TestIn(t *testing.T) {
	for _, tt := range []struct {
		d    Dialect
		vals []string
		want string
	}{
		{SQLite, []string{"a"}, `"id" = ?`},
		{SQLite, []string{"a", "b", "c"}, `"id" IN (SELECT value FROM json_each(?))`},
		{Postgres, []string{"a"}, `"id" = $2`},
		{Postgres, []string{"a", "b"}, `"id" = ANY($2)`},
	} {
		a := &Args{Dialect: tt.d}
		a.Add("first")
		if got := In(a, `"id"`, tt.vals); got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.d, tt.vals, got, tt.want)
		}
		if len(a.Values) != 2 {
			t.Fatalf("%s %v: values %v", tt.d, tt.vals, a.Values)
		}
		var want any = tt.vals[0]
		if len(tt.vals) > 1 {
			want = fmt.Sprint(tt.vals)
			if tt.d == SQLite {
				want = `["` + strings.Join(tt.vals, `","`) + `"]`
			}
		}
		if got := fmt.Sprint(a.Values[1]); got != fmt.Sprint(want) {
			t.Errorf("%s %v: bound %s, want %s", tt.d, tt.vals, got, want)
		}
	}
}
