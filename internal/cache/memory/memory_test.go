package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/cache/cachetest"
)

func open(t testing.TB, cfg Config) *Cache {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSuite(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Cache { return open(t, Config{}) })
}

func TestSuiteByEntries(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Cache { return open(t, Config{MaxEntries: 10_000}) })
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBytes: 1 << 20, MaxEntries: 10},
		{MaxEntries: -1},
		{DefaultTTL: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestBoundedByEntries(t *testing.T) {
	ctx := context.Background()
	c := open(t, Config{MaxEntries: 100})
	for i := range 2000 {
		if err := c.Set(ctx, fmt.Sprint(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	c.entries.CleanUp()
	if n := c.Len(); n > 100 {
		t.Fatalf("Len() = %d after 2000 sets, want at most 100", n)
	}
}

func TestBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	c := open(t, Config{MaxBytes: 1 << 20})
	value := make([]byte, 10<<10)
	for i := range 500 {
		if err := c.Set(ctx, fmt.Sprint(i), value, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	c.entries.CleanUp()
	if w := c.entries.WeightedSize(); w > 1<<20 {
		t.Fatalf("weighted size %d after 5 MB of sets, want at most 1 MiB", w)
	}
}

// A tag generation that is lost (evicted to respect MaxTags, or expired)
// makes the entries under it misses, never stale hits, even when the tag
// is stamped again afterwards.
func TestLostTagMisses(t *testing.T) {
	ctx := context.Background()
	c := open(t, Config{})
	if err := c.Set(ctx, "k", []byte("v"), time.Minute, "t"); err != nil {
		t.Fatal(err)
	}
	c.tags.Invalidate("t") // what eviction or expiry does
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Fatal("entry served after its tag generation was lost")
	}
	if err := c.Set(ctx, "k2", []byte("v2"), time.Minute, "t"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Get(ctx, "k"); ok {
		t.Fatal("entry served after its tag was stamped anew")
	}
	if v, ok, _ := c.Get(ctx, "k2"); !ok || string(v) != "v2" {
		t.Fatalf("Get(k2) = %q, %v; want v2", v, ok)
	}
}

func TestTagsBounded(t *testing.T) {
	ctx := context.Background()
	c := open(t, Config{MaxTags: 10})
	for i := range 1000 {
		if _, err := c.Stamp(ctx, fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.tags.CleanUp()
	if n := c.tags.EstimatedSize(); n > 10 {
		t.Fatalf("%d tag generations kept, want at most 10", n)
	}
}

func BenchmarkGetHit(b *testing.B) {
	ctx := context.Background()
	c := open(b, Config{})
	if err := c.Set(ctx, "key", make([]byte, 512), time.Hour, "c:posts", "r:posts:1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := c.Get(ctx, "key"); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkGetHitParallel(b *testing.B) {
	ctx := context.Background()
	c := open(b, Config{})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
		if err := c.Set(ctx, keys[i], make([]byte, 512), time.Hour, "c:posts", fmt.Sprint("r:posts:", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := c.Get(ctx, keys[i&1023]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
