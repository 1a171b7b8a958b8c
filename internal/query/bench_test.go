package query

import (
	"testing"

	"github.com/strata-dev/strata/internal/sqldb"
)

// BenchmarkCompile measures what a list request pays for its filter and
// sort: parse, type-check and compile to SQL.
func BenchmarkCompile(b *testing.B) {
	const filter = `(done = true && views >= 100) || (title ~ "go" && author.name = "Ada") && meta.lang != null`
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		b.Run(d.String(), func(b *testing.B) {
			env := testEnv(d, "posts")
			b.ReportAllocs()
			for b.Loop() {
				e, err := Parse(filter)
				if err != nil {
					b.Fatal(err)
				}
				sorts, err := ParseSort("-views,title")
				if err != nil {
					b.Fatal(err)
				}
				args := &sqldb.Args{Dialect: d}
				if _, err := env.Where(e, args); err != nil {
					b.Fatal(err)
				}
				if _, err := env.Order(sorts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
