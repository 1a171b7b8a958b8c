package redis

import (
	"bytes"
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/cache/cachetest"
	"github.com/strata-dev/strata/internal/redistest"
)

func open(t testing.TB, client goredis.UniversalClient, prefix string) *Cache {
	t.Helper()
	c, err := New(Config{Client: client, Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSuite(t *testing.T) {
	client := redistest.Client(t)
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		return open(t, client, redistest.Prefix(t))
	})
}

// Two nodes, each with its own client, share entries and generations: an
// invalidation on one is seen by the next read on the other.
func TestTwoNodes(t *testing.T) {
	prefix := redistest.Prefix(t)
	a := open(t, redistest.Client(t), prefix)
	b := open(t, redistest.Client(t), prefix)
	ctx := t.Context()

	if err := a.Set(ctx, "post:1", []byte("p1"), time.Minute, "r:posts:1"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := b.Get(ctx, "post:1"); err != nil || !ok || string(v) != "p1" {
		t.Fatalf("node b Get = %q, %v, %v; want p1", v, ok, err)
	}
	// b stamps, a invalidates during b's load, b writes: nobody serves it.
	s, err := b.Stamp(ctx, "r:posts:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Invalidate(ctx, "r:posts:1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := b.Get(ctx, "post:1"); ok {
		t.Fatal("node b served an entry node a invalidated")
	}
	if err := b.SetStamped(ctx, "post:1", []byte("stale"), time.Minute, s); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Cache{a, b} {
		if v, ok, _ := n.Get(ctx, "post:1"); ok {
			t.Fatalf("served %q, loaded before an invalidation on another node", v)
		}
	}
}

// Redis goes away: operations fail promptly and are counted; when it is
// back, the same Cache (and client) works again.
func TestRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	client := goredis.NewClient(&goredis.Options{
		Addr:         srv.Addr(),
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
		MaxRetries:   1,
	})
	t.Cleanup(func() { client.Close() })
	c, err := New(Config{Client: client, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.Set(ctx, "k", []byte("v"), time.Minute, "t"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	ops := map[string]func() error{
		"Get":        func() error { _, _, err := c.Get(ctx, "k"); return err },
		"Set":        func() error { return c.Set(ctx, "k", []byte("v"), time.Minute, "t") },
		"Invalidate": func() error { return c.Invalidate(ctx, "t") },
		"Delete":     func() error { return c.Delete(ctx, "k") },
		"Ping":       func() error { return c.Ping(ctx) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		if err == nil {
			t.Fatalf("%s with Redis down: no error", name)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("%s with Redis down took %v, want < 1s", name, took)
		}
	}
	if got := c.Stats().Errors; got != uint64(len(ops)) {
		t.Fatalf("Stats().Errors = %d, want %d", got, len(ops))
	}

	// A Loader serves from the source meanwhile.
	l := cache.NewLoader(cache.LoaderConfig{Cache: c})
	v, err := l.GetOrLoad(ctx, "k", time.Minute, []string{"t"}, func(context.Context) ([]byte, error) {
		return []byte("source"), nil
	})
	if err != nil || string(v) != "source" {
		t.Fatalf("GetOrLoad with Redis down = %q, %v; want the source's value", v, err)
	}

	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for c.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the cache did not recover after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Set(ctx, "k", []byte("back"), time.Minute, "t"); err != nil {
		t.Fatalf("Set after recovery: %v", err)
	}
	if v, ok, err := c.Get(ctx, "k"); err != nil || !ok || string(v) != "back" {
		t.Fatalf("Get after recovery = %q, %v, %v", v, ok, err)
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, s := range []cache.Stamp{
		{},
		{Tags: []string{"a"}, Gens: []uint64{1}},
		{Tags: []string{"", "t\x00é", "c:posts"}, Gens: []uint64{1 << 62, 7, 1}},
	} {
		for _, value := range [][]byte{nil, {}, {0, 1, 255}, []byte("hello")} {
			tags, gens, v, ok := decode(encode(s, value))
			if !ok || len(tags) != len(s.Tags) || !bytes.Equal(v, value) {
				t.Fatalf("decode(encode(%+v, %q)) = %q, %v, %q, %v", s, value, tags, gens, v, ok)
			}
			for i := range tags {
				if tags[i] != s.Tags[i] || gens[i] != s.Gens[i] {
					t.Fatalf("decode(encode(%+v)) = %q, %v", s, tags, gens)
				}
			}
		}
	}
	for _, b := range [][]byte{nil, {}, {2}, {1}, {1, 5}, {1, 1, 3, 'a'}, {1, 1, 1, 'a', 0, 0}} {
		if _, _, _, ok := decode(b); ok {
			t.Errorf("decode(%v): ok, want rejected", b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(cache.Stamp{Tags: []string{"a", "bc"}, Gens: []uint64{1, 2}}, []byte("v")))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, gens, value, ok := decode(b)
		if !ok {
			return
		}
		// What decodes re-encodes to the same bytes.
		if got := encode(cache.Stamp{Tags: tags, Gens: gens}, value); !bytes.Equal(got, b) {
			t.Fatalf("encode(decode(%x)) = %x", b, got)
		}
	})
}

func BenchmarkGetHit(b *testing.B) {
	c := open(b, redistest.Client(b), redistest.Prefix(b))
	ctx := context.Background()
	if err := c.Set(ctx, "key", make([]byte, 512), time.Hour); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := c.Get(ctx, "key"); !ok || err != nil {
			b.Fatal("miss", err)
		}
	}
}

func BenchmarkGetHitTagged(b *testing.B) {
	c := open(b, redistest.Client(b), redistest.Prefix(b))
	ctx := context.Background()
	if err := c.Set(ctx, "key", make([]byte, 512), time.Hour, "c:posts", "r:posts:1"); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := c.Get(ctx, "key"); !ok || err != nil {
			b.Fatal("miss", err)
		}
	}
}
