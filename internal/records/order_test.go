package records_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestIndexServesListOrder: a list sorted on an index's fields ends its
// order with id; the index ends with id too, so the database reads the
// rows in order and stops at the page instead of sorting what it found.
func TestIndexServesListOrder(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, engine)
			s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k")})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{
				{Name: "title", Type: schema.Text},
				{Name: "views", Type: schema.Number},
				{Name: "published", Type: schema.Bool},
				{Name: "meta", Type: schema.JSON},
			}, Indexes: []schema.Index{{Fields: []string{"published", "views"}}, {Fields: []string{"title"}, Unique: true}}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				if _, err := s.Create(ctx, "posts", body(i), records.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			d := db.Dialect()
			env := &query.Env{Dialect: d, Collection: c, Alias: store.Alias}
			for _, sort := range []string{"-views", "views"} {
				sorts, err := query.ParseSort(sort)
				if err != nil {
					t.Fatal(err)
				}
				keys, err := env.Order(sorts)
				if err != nil {
					t.Fatal(err)
				}
				stmt := fmt.Sprintf(`SELECT %s."id" FROM "posts" %s WHERE %s."published" = %s AND %s."views" >= 500 ORDER BY %s LIMIT 51`,
					store.Alias, store.Alias, store.Alias, map[sqldb.Dialect]string{sqldb.SQLite: "1", sqldb.Postgres: "true"}[d],
					store.Alias, query.OrderBy(keys))
				if plan := explain(t, db, stmt); strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "Sort") {
					t.Errorf("sort %s: the database sorts instead of reading the index in order:\n%s\n%s", sort, stmt, plan)
				}
			}
			// The unique index keeps its meaning: the same title twice is
			// refused.
			dup := body(1)
			if _, err := s.Create(ctx, "posts", dup, records.WriteOptions{}); err == nil {
				t.Error("a unique index with id appended lets a duplicate in")
			}
		})
	}
}

// explain returns the plan of stmt. On PostgreSQL sorting is disabled for
// the plan, so that a Sort node appears only where no index gives the
// order (the planner would otherwise pick by the costs of a small table).
func explain(t *testing.T, db *store.DB, stmt string) string {
	t.Helper()
	var lines []string
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		prefix := "EXPLAIN QUERY PLAN "
		if tx.Dialect == sqldb.Postgres {
			prefix = "EXPLAIN "
			for _, set := range []string{"SET LOCAL enable_sort = off", "SET LOCAL enable_seqscan = off"} {
				if _, err := tx.ExecContext(context.Background(), set); err != nil {
					return err
				}
			}
		}
		rows, err := tx.QueryContext(context.Background(), prefix+stmt)
		if err != nil {
			return err
		}
		_, all, err := storetest.ScanAll(rows)
		for _, vals := range all {
			lines = append(lines, fmt.Sprint(vals...))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
