package sqldb

import "testing"

func TestIn(t *testing.T) {
	for _, tt := range []struct {
		d    Dialect
		vals []string
		want string
	}{
		{SQLite, []string{"a"}, `"id" = ?`},
		{SQLite, []string{"a", "b", "c"}, `"id" IN (?, ?, ?)`},
		{Postgres, []string{"a"}, `"id" = $2`},
		{Postgres, []string{"a", "b"}, `"id" IN ($2, $3)`},
	} {
		a := &Args{Dialect: tt.d}
		a.Add("first")
		if got := In(a, `"id"`, tt.vals); got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.d, tt.vals, got, tt.want)
		}
		if len(a.Values) != 1+len(tt.vals) || a.Values[1] != tt.vals[0] {
			t.Errorf("%s %v: values %v", tt.d, tt.vals, a.Values)
		}
	}
}
