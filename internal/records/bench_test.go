package records_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

func f64(v float64) *float64 { return &v }

// benchService returns a service with a posts collection holding n records.
func benchService(b *testing.B, engine string, n int) (*records.Service, []string) {
	b.Helper()
	ctx := context.Background()
	db := storetest.Open(b, engine)
	s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	_, err = s.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true, Max: f64(200)},
		{Name: "views", Type: schema.Number, Min: f64(0)},
		{Name: "published", Type: schema.Bool},
		{Name: "meta", Type: schema.JSON},
	}, Indexes: []schema.Index{{Fields: []string{"published", "views"}}}})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		c, err := s.Create(ctx, "posts", body(i), records.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = c.Record.ID
	}
	return s, ids
}

func body(i int) map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"title":     json.RawMessage(fmt.Sprintf(`"post number %d"`, i)),
		"views":     json.RawMessage(fmt.Sprint(i % 1000)),
		"published": json.RawMessage(fmt.Sprint(i%2 == 0)),
		"meta":      json.RawMessage(`{"lang":"en","n":1}`),
	}
}

func forEngines(b *testing.B, f func(b *testing.B, engine string)) {
	for _, engine := range storetest.Engines(b) {
		b.Run(engine, func(b *testing.B) { f(b, engine) })
	}
}

func BenchmarkCreate(b *testing.B) {
	forEngines(b, func(b *testing.B, engine string) {
		s, _ := benchService(b, engine, 0)
		ctx := context.Background()
		b.SetParallelism(25) // 50 writers on 2 cores, like 50 connections
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Create(ctx, "posts", body(i), records.WriteOptions{}); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkGet(b *testing.B) {
	forEngines(b, func(b *testing.B, engine string) {
		s, ids := benchService(b, engine, 1000)
		ctx := context.Background()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.Get(ctx, "posts", ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkList(b *testing.B) {
	forEngines(b, func(b *testing.B, engine string) {
		s, _ := benchService(b, engine, 5000)
		ctx := context.Background()
		p := records.ListParams{Filter: "published = true && views >= 100", Sort: "-views", Limit: 50}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				page, err := s.List(ctx, "posts", p)
				if err != nil || len(page.Items) != 50 {
					b.Errorf("list: %v, %d items", err, len(page.Items))
					return
				}
			}
		})
	})
}

// BenchmarkRuleOverhead compares a list and a view by a user under an
// owner-only rule with the same operations as a superuser (no rule).
func BenchmarkRuleOverhead(b *testing.B) {
	forEngines(b, func(b *testing.B, engine string) {
		ctx := context.Background()
		db := storetest.Open(b, engine)
		s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k")})
		if err != nil {
			b.Fatal(err)
		}
		rule := "owner = @request.auth.id"
		_, err = s.CreateCollection(ctx, &schema.Collection{Name: "notes", Fields: []*schema.Field{
			{Name: "title", Type: schema.Text}, {Name: "owner", Type: schema.Text},
		}, Indexes: []schema.Index{{Fields: []string{"owner"}}}, Rules: schema.Rules{List: &rule, View: &rule}})
		if err != nil {
			b.Fatal(err)
		}
		var mine string
		for i := range 2000 {
			owner := fmt.Sprint("u", i%20)
			c, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": json.RawMessage(fmt.Sprintf(`"n%d"`, i)), "owner": json.RawMessage(`"` + owner + `"`)}, records.WriteOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if owner == "u0" {
				mine = c.Record.ID
			}
		}
		user := records.WithCaller(ctx, &records.Caller{Request: &query.Request{Auth: map[string]any{"id": "u0", "collection": "members"}, Now: time.Now()}})
		for _, c := range []struct {
			name string
			ctx  context.Context
		}{{"superuser", ctx}, {"owner_rule", user}} {
			b.Run("list/"+c.name, func(b *testing.B) {
				for b.Loop() {
					p, err := s.List(c.ctx, "notes", records.ListParams{Filter: `owner = "u0"`, Limit: 50})
					if err != nil || len(p.Items) != 50 {
						b.Fatalf("%v %d", err, len(p.Items))
					}
				}
			})
			b.Run("view/"+c.name, func(b *testing.B) {
				for b.Loop() {
					if _, err := s.Get(c.ctx, "notes", mine); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
