package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/cache/memory"
	rediscache "github.com/strata-dev/strata/internal/cache/redis"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/redistest"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// openCache returns a new cache of the named adapter, closed when the
// test ends.
func openCache(t testing.TB, adapter string) cache.Cache {
	t.Helper()
	var c cache.Cache
	var err error
	switch adapter {
	case "memory":
		c, err = memory.New(memory.Config{})
	case "redis":
		c, err = rediscache.New(rediscache.Config{Client: redistest.Client(t), Prefix: redistest.Prefix(t), Timeout: 2 * time.Second})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// forEngineAndCache runs f for every engine and cache adapter.
func forEngineAndCache(t *testing.T, f func(t *testing.T, engine, adapter string)) {
	for _, engine := range storetest.Engines(t) {
		for _, adapter := range []string{"memory", "redis"} {
			t.Run(engine+"/"+adapter, func(t *testing.T) { f(t, engine, adapter) })
		}
	}
}

// node is one records service with its metrics.
type node struct {
	*records.Service
	reg *prometheus.Registry
	db  *store.DB
}

func newNode(t testing.TB, db *store.DB, c cache.Cache) *node {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := records.New(context.Background(), records.Options{DB: db, Secret: []byte("k"), Cache: c, Metrics: reg, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return &node{s, reg, db}
}

// requests returns strata_cache_requests_total of the collection and
// result.
func (n *node) requests(t testing.TB, collection, result string) int {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, mf := range mfs {
		if mf.GetName() != "strata_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["collection"] == collection && labels["result"] == result {
				total += int(m.GetCounter().GetValue())
			}
		}
	}
	return total
}

func (n *node) cacheErrors(t testing.TB) int {
	t.Helper()
	mfs, _ := n.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "strata_cache_errors_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

func strp(s string) *string { return &s }

func raw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func mustCollection(t testing.TB, s *records.Service, c *schema.Collection) {
	t.Helper()
	if _, err := s.CreateCollection(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t testing.TB, s *records.Service, ctx context.Context, name string, body map[string]json.RawMessage) *schema.Record {
	t.Helper()
	c, err := s.Create(ctx, name, body, records.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Record
}

func postsCollection(policy schema.CachePolicy) *schema.Collection {
	public := ""
	return &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text}, {Name: "views", Type: schema.Number},
	}, Rules: schema.Rules{List: &public, View: &public}, Cache: &schema.Cache{Policy: policy, TTL: "1m"}}
}

func anonymous(ctx context.Context) context.Context {
	return records.WithCaller(ctx, &records.Caller{Request: &query.Request{Method: "GET", Now: time.Now(), Query: map[string]string{}}})
}

func user(ctx context.Context, id string) context.Context {
	return records.WithCaller(ctx, &records.Caller{Request: &query.Request{Method: "GET", Now: time.Now(), Query: map[string]string{},
		Auth: map[string]any{"id": id, "collection": "users"}}})
}

func TestCacheAside(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		mustCollection(t, n.Service, postsCollection(schema.CacheAside))
		r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one"), "views": raw(1)})
		anon := anonymous(ctx)

		get := func(want string) {
			t.Helper()
			got, err := n.Get(anon, "posts", r.ID)
			if err != nil || got.Values["title"] != want {
				t.Fatalf("Get = %v, %v; want title %q", got, err, want)
			}
		}
		get("one")
		get("one")
		if miss, hit := n.requests(t, "posts", "miss"), n.requests(t, "posts", "hit"); miss != 1 || hit != 1 {
			t.Fatalf("two views: %d misses, %d hits; want 1 and 1", miss, hit)
		}
		// A cached view renders exactly as one read from the database.
		fromDB, _ := store.GetRecordIf(ctx, n.DB(), n.Lookup(t, "posts"), r.ID, "", &sqldb.Args{Dialect: n.db.Dialect()}, false)
		cached, _ := n.Get(anon, "posts", r.ID)
		if records.ETag(fromDB) != records.ETag(cached) {
			t.Fatalf("cached record %v renders differently from %v", cached.Values, fromDB.Values)
		}

		list := func(want int) {
			t.Helper()
			p, err := n.List(anon, "posts", records.ListParams{Sort: "title", Total: true})
			if err != nil || len(p.Items) != want || *p.Total != int64(want) {
				t.Fatalf("List = %v, %v; want %d items", p, err, want)
			}
		}
		before := n.requests(t, "posts", "miss")
		list(1)
		list(1)
		if miss := n.requests(t, "posts", "miss") - before; miss != 1 {
			t.Fatalf("two lists loaded %d times, want 1", miss)
		}

		// Every change invalidates the view and the lists.
		if _, err := n.Update(ctx, "posts", r.ID, map[string]json.RawMessage{"title": raw("two")}, false, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		get("two")
		mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("three")})
		list(2)
		if err := n.Delete(ctx, "posts", r.ID, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Get(anon, "posts", r.ID); apperr.KindOf(err) != apperr.NotFound {
			t.Fatalf("Get after delete: %v, want not found", err)
		}
		list(1)
	})
}

// Lookup returns a collection, failing the test when it is missing.
func (n *node) Lookup(t testing.TB, name string) *schema.Collection {
	t.Helper()
	c, err := n.Collection(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// DB returns the node's database, for reads that bypass the service.
func (n *node) DB() store.Querier { return n.db.Reader() }

// One user's cached list or view is never served to another under an
// owner-only rule.
func TestCacheIsolatesUsers(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		owner := "owner = @request.auth.id"
		mustCollection(t, n.Service, &schema.Collection{Name: "notes", Fields: []*schema.Field{
			{Name: "title", Type: schema.Text}, {Name: "owner", Type: schema.Text},
		}, Rules: schema.Rules{List: &owner, View: &owner}, Cache: &schema.Cache{Policy: schema.CacheAside}})
		a := mustCreate(t, n.Service, ctx, "notes", map[string]json.RawMessage{"title": raw("a's"), "owner": raw("A")})
		mustCreate(t, n.Service, ctx, "notes", map[string]json.RawMessage{"title": raw("b's"), "owner": raw("B")})

		for range 2 {
			for _, u := range []string{"A", "B"} {
				p, err := n.List(user(ctx, u), "notes", records.ListParams{})
				if err != nil || len(p.Items) != 1 || p.Items[0].Values["owner"] != u {
					t.Fatalf("%s lists %v, %v; want only its own note", u, p, err)
				}
			}
			if _, err := n.Get(user(ctx, "A"), "notes", a.ID); err != nil {
				t.Fatalf("A views its note: %v", err)
			}
			if r, err := n.Get(user(ctx, "B"), "notes", a.ID); apperr.KindOf(err) != apperr.NotFound {
				t.Fatalf("B views A's cached note: %v, %v; want not found", r, err)
			}
			if r, err := n.Get(anonymous(ctx), "notes", a.ID); apperr.KindOf(err) != apperr.NotFound {
				t.Fatalf("anonymous views A's cached note: %v, %v; want not found", r, err)
			}
		}
		if hit := n.requests(t, "notes", "hit"); hit == 0 {
			t.Fatal("nothing was served from the cache")
		}
	})
}

// A list that filters through a relation is invalidated by a change of
// the related collection.
func TestCacheRelationInvalidates(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		mustCollection(t, n.Service, &schema.Collection{Name: "authors", Fields: []*schema.Field{{Name: "name", Type: schema.Text}}})
		mustCollection(t, n.Service, &schema.Collection{Name: "books", Fields: []*schema.Field{
			{Name: "title", Type: schema.Text}, {Name: "author", Type: schema.Relation, Collection: "authors"},
		}, Cache: &schema.Cache{Policy: schema.CacheAside}})
		au := mustCreate(t, n.Service, ctx, "authors", map[string]json.RawMessage{"name": raw("Ann")})
		mustCreate(t, n.Service, ctx, "books", map[string]json.RawMessage{"title": raw("b"), "author": raw(au.ID)})
		count := func() int {
			p, err := n.List(ctx, "books", records.ListParams{Filter: `author.name = "Ann"`})
			if err != nil {
				t.Fatal(err)
			}
			return len(p.Items)
		}
		if count() != 1 || count() != 1 {
			t.Fatal("want 1 book by Ann")
		}
		if _, err := n.Update(ctx, "authors", au.ID, map[string]json.RawMessage{"name": raw("Bea")}, false, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := count(); got != 0 {
			t.Fatalf("after the author's rename: %d books by Ann, want 0", got)
		}
	})
}

// Two nodes on one database and one Redis: a read on node B right after
// a write on node A returns the new value.
func TestCacheTwoNodes(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			params := storetest.Params(t, engine)
			open := func() *store.DB {
				db, err := store.Open(ctx, params)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			prefix := redistest.Prefix(t)
			redisCache := func() cache.Cache {
				c, err := rediscache.New(rediscache.Config{Client: redistest.Client(t), Prefix: prefix, Timeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			a := newNode(t, open(), redisCache())
			mustCollection(t, a.Service, postsCollection(schema.CacheAside))
			b := newNode(t, open(), redisCache())
			anon := anonymous(ctx)
			r := mustCreate(t, a.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("v0")})
			for i := 1; i <= 20; i++ {
				// B reads (filling or hitting the shared cache), A writes,
				// B reads again at once: no delay, no stale value.
				if _, err := b.Get(anon, "posts", r.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := b.List(anon, "posts", records.ListParams{}); err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprint("v", i)
				if _, err := a.Update(ctx, "posts", r.ID, map[string]json.RawMessage{"title": raw(want)}, false, records.WriteOptions{}); err != nil {
					t.Fatal(err)
				}
				got, err := b.Get(anon, "posts", r.ID)
				if err != nil || got.Values["title"] != want {
					t.Fatalf("node B after node A's write #%d: %v, %v; want %s", i, got.Values, err, want)
				}
				p, err := b.List(anon, "posts", records.ListParams{})
				if err != nil || p.Items[0].Values["title"] != want {
					t.Fatalf("node B's list after node A's write #%d: %v; want %s", i, err, want)
				}
			}
			if b.requests(t, "posts", "hit") == 0 {
				t.Fatal("node B never hit the shared cache")
			}
		})
	}
}

// Write-through: after a write the next view is a hit with the new value.
func TestCacheWriteThrough(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		mustCollection(t, n.Service, postsCollection(schema.CacheWriteThrough))
		r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one")})
		anon := anonymous(ctx)
		for i, title := range []string{"two", "three"} {
			if _, err := n.Update(ctx, "posts", r.ID, map[string]json.RawMessage{"title": raw(title)}, false, records.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			hits := n.requests(t, "posts", "hit")
			got, err := n.Get(anon, "posts", r.ID)
			if err != nil || got.Values["title"] != title {
				t.Fatalf("Get after write %d = %v, %v; want %s", i, got, err, title)
			}
			if n.requests(t, "posts", "hit") != hits+1 {
				t.Fatalf("the view after write %d was not a hit", i)
			}
		}
	})
}

// Write-back: increments are pending (visible to reads on the node) until
// a flush writes them, once.
func TestCacheWriteBack(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		c := postsCollection(schema.CacheWriteBack)
		c.Cache.Counters = []string{"views"}
		c.Rules.Update = strp("@request.body.views = 1")
		mustCollection(t, n.Service, c)
		r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one"), "views": raw(10)})
		anon := anonymous(ctx)
		stored := func() float64 {
			t.Helper()
			rec, err := store.GetRecordIf(ctx, n.DB(), n.Lookup(t, "posts"), r.ID, "", &sqldb.Args{Dialect: n.db.Dialect()}, false)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := rec.Values["views"].(float64)
			return v
		}
		for i := 1; i <= 5; i++ {
			got, err := n.Increment(anon, "posts", r.ID, map[string]json.RawMessage{"views": raw(1)})
			if err != nil || got.Values["views"] != float64(10+i) {
				t.Fatalf("Increment #%d = %v, %v; want views %d", i, got, err, 10+i)
			}
		}
		// The update rule holds only for +1.
		if _, err := n.Increment(anon, "posts", r.ID, map[string]json.RawMessage{"views": raw(100)}); apperr.KindOf(err) != apperr.NotFound {
			t.Fatalf("increment the rule refuses: %v", err)
		}
		if _, err := n.Increment(anon, "posts", r.ID, map[string]json.RawMessage{"title": raw(1)}); apperr.KindOf(err) != apperr.Invalid {
			t.Fatalf("increment of a field that is no counter: %v", err)
		}
		if got := stored(); got != 10 {
			t.Fatalf("stored views before the flush = %v, want 10", got)
		}
		check := func(want float64) {
			t.Helper()
			got, err := n.Get(anon, "posts", r.ID)
			if err != nil || got.Values["views"] != want {
				t.Fatalf("Get = %v, %v; want views %v", got, err, want)
			}
			p, err := n.List(anon, "posts", records.ListParams{})
			if err != nil || p.Items[0].Values["views"] != want {
				t.Fatalf("List = %v, %v; want views %v", p, err, want)
			}
		}
		check(15)
		if err := n.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stored(); got != 15 {
			t.Fatalf("stored views after the flush = %v, want 15", got)
		}
		check(15)
		if _, err := n.Increment(anon, "posts", r.ID, map[string]json.RawMessage{"views": raw(1)}); err != nil {
			t.Fatal(err)
		}
		// Close writes what is pending.
		if err := n.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := stored(); got != 16 {
			t.Fatalf("stored views after Close = %v, want 16", got)
		}
	})
}

// With Redis unreachable, reads are answered from the database, and the
// errors are counted.
func TestCacheRedisDown(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
			t.Cleanup(func() { client.Close() })
			c, err := rediscache.New(rediscache.Config{Client: client, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			n := newNode(t, storetest.Open(t, engine), c)
			mustCollection(t, n.Service, postsCollection(schema.CacheWriteThrough))
			r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one")})
			start := time.Now()
			for range 20 {
				if got, err := n.Get(anonymous(ctx), "posts", r.ID); err != nil || got.Values["title"] != "one" {
					t.Fatalf("Get with Redis down = %v, %v", got, err)
				}
				if p, err := n.List(anonymous(ctx), "posts", records.ListParams{}); err != nil || len(p.Items) != 1 {
					t.Fatalf("List with Redis down = %v, %v", p, err)
				}
			}
			if n.cacheErrors(t) == 0 {
				t.Fatal("strata_cache_errors_total did not count the failures")
			}
			// After the first failure reads skip the cache for a while.
			if d := time.Since(start); d > time.Second {
				t.Errorf("40 reads with Redis down took %v", d)
			}
		})
	}
}

func TestIncrementNeedsWriteBack(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, storetest.Open(t, "sqlite"), nil)
	mustCollection(t, n.Service, postsCollection(schema.CacheAside))
	r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one")})
	_, err := n.Increment(ctx, "posts", r.ID, map[string]json.RawMessage{"views": raw(1)})
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Kind != apperr.Invalid {
		t.Fatalf("Increment on a cache-aside collection: %v", err)
	}
}

// Redis stops and comes back: reads succeed throughout, and the cache is
// used again once Redis answers, with nothing restarted.
func TestCacheRecoversFromRedisOutage(t *testing.T) {
	ctx := context.Background()
	srv := redistest.StartServer(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	c, err := rediscache.New(rediscache.Config{Client: client, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, storetest.Open(t, "sqlite"), c)
	mustCollection(t, n.Service, postsCollection(schema.CacheAside))
	r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one")})
	read := func() {
		t.Helper()
		if _, err := n.Get(anonymous(ctx), "posts", r.ID); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}
	read()
	read()
	if n.requests(t, "posts", "hit") != 1 {
		t.Fatal("no hit with Redis up")
	}
	srv.Stop()
	for range 10 {
		read()
	}
	if n.cacheErrors(t) == 0 {
		t.Fatal("no cache error counted with Redis down")
	}
	srv.Start()
	hits := n.requests(t, "posts", "hit")
	deadline := time.Now().Add(5 * time.Second)
	for n.requests(t, "posts", "hit") == hits {
		if time.Now().After(deadline) {
			t.Fatal("the cache was not used again after Redis came back")
		}
		read()
		time.Sleep(50 * time.Millisecond)
	}
}

// A collection's cache setting travels through migration files.
func TestCacheSettingMigrates(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := records.New(ctx, records.Options{DB: storetest.Open(t, "sqlite"), Secret: []byte("k"), MigrationsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := postsCollection(schema.CacheWriteBack)
	c.Cache.Counters = []string{"views"}
	c.Cache.HTTP = &schema.HTTPCache{MaxAge: "60s", StaleWhileRevalidate: "30s"}
	mustCollection(t, src, c)
	if _, err := src.UpdateCollection(ctx, "posts", &records.CollectionPatch{Cache: &schema.Cache{Policy: schema.CacheWriteBack, TTL: "10s", Counters: []string{"views"}}}); err != nil {
		t.Fatal(err)
	}
	for _, engine := range storetest.Engines(t) {
		dst, err := records.New(ctx, records.Options{DB: storetest.Open(t, engine), Secret: []byte("k")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Up(ctx, dir); err != nil {
			t.Fatal(err)
		}
		got, err := dst.Collection(ctx, "posts")
		if err != nil {
			t.Fatal(err)
		}
		if got.Cache == nil || got.Cache.TTL != "10s" || got.CachePolicy() != schema.CacheWriteBack || got.Cache.HTTP != nil {
			t.Fatalf("%s: migrated cache setting %+v", engine, got.Cache)
		}
	}
	// An invalid setting is refused with the field named.
	_, err = src.UpdateCollection(ctx, "posts", &records.CollectionPatch{Cache: &schema.Cache{Policy: schema.CacheWriteBack, Counters: []string{"title"}}})
	var ae *apperr.Error
	if !errors.As(err, &ae) || len(ae.Fields) != 1 || ae.Fields[0].Field != "cache.counters[0]" {
		t.Fatalf("invalid cache setting: %v", err)
	}
}

// TestCachedViewsAreTheCallers: hits that reuse a decoded record give each
// caller a record of its own, and a change is seen at the next hit.
func TestCachedViewsAreTheCallers(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		mustCollection(t, n.Service, postsCollection(schema.CacheAside))
		r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one"), "views": raw(1)})
		anon := anonymous(ctx)
		first, err := n.Get(anon, "posts", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		first.Values["title"], first.ID = "changed by the caller", "x"
		for range 2 {
			got, err := n.Get(anon, "posts", r.ID)
			if err != nil || got.ID != r.ID || got.Values["title"] != "one" || got.Values["views"] != 1.0 {
				t.Fatalf("a hit after a caller changed its copy: %+v, %v", got, err)
			}
			got.Values["views"] = 99.0
		}
		if _, err := n.Update(ctx, "posts", r.ID, map[string]json.RawMessage{"views": raw(2)}, false, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got, err := n.Get(anon, "posts", r.ID); err != nil || got.Values["views"] != 2.0 || got.Values["title"] != "one" {
				t.Fatalf("after an update: %+v, %v", got, err)
			}
		}
		if hit := n.requests(t, "posts", "hit"); hit < 3 {
			t.Errorf("%d hits, want at least 3", hit)
		}
	})
}

// TestCachedViewJSON: a cached view hands out the record's JSON as
// AppendJSON writes it, at a miss and at hits, follows a change, and hands
// out none for a write-back collection, whose views add pending
// increments.
func TestCachedViewJSON(t *testing.T) {
	forEngineAndCache(t, func(t *testing.T, engine, adapter string) {
		ctx := context.Background()
		n := newNode(t, storetest.Open(t, engine), openCache(t, adapter))
		mustCollection(t, n.Service, postsCollection(schema.CacheAside))
		r := mustCreate(t, n.Service, ctx, "posts", map[string]json.RawMessage{"title": raw("one"), "views": raw(1)})
		anon := anonymous(ctx)
		check := func(views float64) {
			t.Helper()
			got, body, err := n.GetJSON(anon, "posts", r.ID)
			if err != nil || got.Values["views"] != views {
				t.Fatalf("GetJSON: %+v, %v", got, err)
			}
			want, _ := got.AppendJSON(nil, nil)
			if string(body) != string(want) {
				t.Fatalf("JSON %s, the record's %s", body, want)
			}
		}
		for range 3 {
			check(1)
		}
		if _, err := n.Update(ctx, "posts", r.ID, map[string]json.RawMessage{"views": raw(2)}, false, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			check(2)
		}

		wb := postsCollection(schema.CacheWriteBack)
		wb.Name, wb.Cache.Counters = "counted", []string{"views"}
		mustCollection(t, n.Service, wb)
		c := mustCreate(t, n.Service, ctx, "counted", map[string]json.RawMessage{"title": raw("c"), "views": raw(1)})
		for range 2 {
			if _, body, err := n.GetJSON(anon, "counted", c.ID); err != nil || body != nil {
				t.Fatalf("write-back view: JSON %s, %v", body, err)
			}
		}
	})
}
