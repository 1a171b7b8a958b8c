package records_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

// cachedBenchService is benchService with the posts collection under
// cache-aside and public rules, over the named cache ("none": no cache).
func cachedBenchService(b *testing.B, engine, adapter string, n int) (*records.Service, []string) {
	b.Helper()
	ctx := context.Background()
	var c cache.Cache
	if adapter != "none" {
		c = openCache(b, adapter)
	}
	s, err := records.New(ctx, records.Options{DB: storetest.Open(b, engine), Secret: []byte("k"), Cache: c})
	if err != nil {
		b.Fatal(err)
	}
	public := ""
	_, err = s.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true}, {Name: "views", Type: schema.Number},
		{Name: "published", Type: schema.Bool}, {Name: "meta", Type: schema.JSON},
	}, Indexes: []schema.Index{{Fields: []string{"published", "views"}}},
		Rules: schema.Rules{List: &public, View: &public}, Cache: &schema.Cache{Policy: schema.CacheAside}})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		r, err := s.Create(ctx, "posts", body(i), records.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = r.Record.ID
	}
	return s, ids
}

func forCaches(b *testing.B, f func(b *testing.B, engine, adapter string)) {
	for _, engine := range storetest.Engines(b) {
		for _, adapter := range []string{"none", "memory", "redis"} {
			b.Run(engine+"/"+adapter, func(b *testing.B) { f(b, engine, adapter) })
		}
	}
}

// BenchmarkCachedGet views 100 records in turn as an anonymous caller,
// uncached and through each cache adapter.
func BenchmarkCachedGet(b *testing.B) {
	forCaches(b, func(b *testing.B, engine, adapter string) {
		s, ids := cachedBenchService(b, engine, adapter, 100)
		ctx := anonymous(context.Background())
		i := 0
		lat := newLatencies(b)
		for b.Loop() {
			start := time.Now()
			if _, err := s.Get(ctx, "posts", ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			lat.add(start)
			i++
		}
		lat.report()
	})
}

// latencies keeps each operation's time, to report req/s and p99 next to
// the mean that ns/op gives.
type latencies struct {
	b     *testing.B
	d     []time.Duration
	start time.Time
}

func newLatencies(b *testing.B) *latencies {
	return &latencies{b: b, start: time.Now()}
}

func (l *latencies) add(start time.Time) { l.d = append(l.d, time.Since(start)) }

func (l *latencies) report() {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	var total time.Duration
	for _, d := range l.d {
		total += d
	}
	l.b.ReportMetric(float64(len(l.d))/total.Seconds(), "req/s")
	l.b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCachedList lists a page of 50 of 2000 records with a filter
// and a sort, uncached and through each cache adapter.
func BenchmarkCachedList(b *testing.B) {
	forCaches(b, func(b *testing.B, engine, adapter string) {
		s, _ := cachedBenchService(b, engine, adapter, 2000)
		ctx := anonymous(context.Background())
		p := records.ListParams{Filter: "published = true && views >= 100", Sort: "-views", Limit: 50}
		lat := newLatencies(b)
		for b.Loop() {
			start := time.Now()
			page, err := s.List(ctx, "posts", p)
			if err != nil || len(page.Items) != 50 {
				b.Fatalf("list: %v", err)
			}
			lat.add(start)
		}
		lat.report()
	})
}
