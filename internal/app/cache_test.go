package app

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/redistest"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

func createPosts(t *testing.T, a *App) string {
	t.Helper()
	ctx := context.Background()
	public := ""
	_, err := a.Records().CreateCollection(ctx, &schema.Collection{Name: "posts",
		Fields: []*schema.Field{{Name: "title", Type: schema.Text}},
		Rules:  schema.Rules{List: &public, View: &public},
		Cache:  &schema.Cache{Policy: schema.CacheAside}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Records().Create(ctx, "posts", map[string]json.RawMessage{"title": json.RawMessage(`"v0"`)}, records.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Record.ID
}

func counter(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// With redis_url unreachable, reads of cached collections still answer
// 200 from the database; the errors are counted.
func TestCacheRedisUnreachable(t *testing.T) {
	a := openApp(t, func(c *config.Config) { c.RedisURL = "redis://127.0.0.1:1/0" })
	id := createPosts(t, a)
	for range 5 {
		for _, path := range []string{"/api/v1/collections/posts/records/" + id, "/api/v1/collections/posts/records"} {
			if res := get(a, "192.0.2.1:1234", path); res.Code != 200 {
				t.Fatalf("GET %s with Redis unreachable: %d %s", path, res.Code, res.Body)
			}
		}
	}
	if counter(t, a, "strata_cache_errors_total") == 0 {
		t.Fatal("strata_cache_errors_total is 0")
	}
	if _, ok := a.Health().Check(context.Background()).Components["redis"]; ok {
		t.Error("the cache made Redis a readiness check")
	}
}

// Two apps on one PostgreSQL and one Redis: a read on B right after a
// write on A returns the new value.
func TestCacheTwoApps(t *testing.T) {
	url := storetest.Schema(t)
	redisURL := redistest.URL(t)
	open := func() *App {
		return openApp(t, func(c *config.Config) { c.DB, c.RedisURL = url, redisURL })
	}
	a, b := open(), open()
	if a.cfg.CacheBackend() != "redis" {
		t.Fatalf("cache backend %q with redis_url set", a.cfg.CacheBackend())
	}
	id := createPosts(t, a)
	path := "/api/v1/collections/posts/records/" + id
	for i := 1; i <= 10; i++ {
		if res := get(b, "192.0.2.1:1234", path); res.Code != 200 {
			t.Fatalf("GET on B: %d %s", res.Code, res.Body)
		}
		want := "v" + string(rune('0'+i%10))
		if _, err := a.Records().Update(context.Background(), "posts", id, map[string]json.RawMessage{"title": json.RawMessage(`"` + want + `"`)}, false, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		res := get(b, "192.0.2.1:1234", path)
		var got map[string]any
		json.Unmarshal(res.Body.Bytes(), &got)
		if res.Code != 200 || got["title"] != want {
			t.Fatalf("GET on B after a write on A: %d %v; want title %s", res.Code, got, want)
		}
	}
	if counter(t, b, "strata_cache_requests_total") == 0 {
		t.Fatal("B never used the cache")
	}
}
