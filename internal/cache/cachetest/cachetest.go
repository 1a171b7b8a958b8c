// Package cachetest is the behavioural suite of cache.Cache: every adapter
// runs it with its own constructor.
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/cache"
)

// Open returns a new, empty cache for one test; the adapter's test closes
// it (and anything it needs) when the test ends.
type Open func(t *testing.T) cache.Cache

// statser is implemented by adapters that count their operations.
type statser interface{ Stats() cache.Stats }

// Run runs the suite against the caches open returns. Subtests run in
// parallel, each with a cache of its own.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c cache.Cache)
	}{
		{"GetSet", testGetSet},
		{"TTL", testTTL},
		{"Delete", testDelete},
		{"InvalidateByTag", testInvalidateByTag},
		{"StampThenInvalidate", testStampThenInvalidate},
		{"LoadOnce", testLoadOnce},
		{"LoadRacesInvalidation", testLoadRacesInvalidation},
		{"LoadError", testLoadError},
		{"LargeValue", testLargeValue},
		{"BinaryValues", testBinaryValues},
		{"Concurrent", testConcurrent},
		{"Stats", testStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustSet(t *testing.T, c cache.Cache, key string, value []byte, ttl time.Duration, tags ...string) {
	t.Helper()
	if err := c.Set(ctxT(t), key, value, ttl, tags...); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func get(t *testing.T, c cache.Cache, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := c.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, ok
}

func wantHit(t *testing.T, c cache.Cache, key string, want []byte) {
	t.Helper()
	v, ok := get(t, c, key)
	if !ok {
		t.Fatalf("Get(%q): miss, want %q", key, abbrev(want))
	}
	if !bytes.Equal(v, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, abbrev(v), abbrev(want))
	}
}

func wantMiss(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	if v, ok := get(t, c, key); ok {
		t.Fatalf("Get(%q) = %q, want a miss", key, abbrev(v))
	}
}

func abbrev(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

func testGetSet(t *testing.T, c cache.Cache) {
	if err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	wantMiss(t, c, "absent")
	mustSet(t, c, "k", []byte("v1"), time.Minute)
	wantHit(t, c, "k", []byte("v1"))
	mustSet(t, c, "k", []byte("v2"), time.Minute)
	wantHit(t, c, "k", []byte("v2"))
	// A zero ttl means the adapter's default, not "expired".
	mustSet(t, c, "default-ttl", []byte("d"), 0)
	wantHit(t, c, "default-ttl", []byte("d"))
}

func testTTL(t *testing.T, c cache.Cache) {
	mustSet(t, c, "short", []byte("s"), 150*time.Millisecond)
	mustSet(t, c, "long", []byte("l"), time.Minute)
	wantHit(t, c, "short", []byte("s"))

	set := time.Now()
	deadline := set.Add(3 * time.Second)
	for {
		if _, ok := get(t, c, "short"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry with a 150ms ttl still present after 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if gone := time.Since(set); gone < 100*time.Millisecond {
		t.Fatalf("entry with a 150ms ttl gone after %v", gone)
	}
	wantHit(t, c, "long", []byte("l"))
}

func testDelete(t *testing.T, c cache.Cache) {
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, c, k, []byte(k), time.Minute)
	}
	if err := c.Delete(ctxT(t), "a", "b", "never-set"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMiss(t, c, "a")
	wantMiss(t, c, "b")
	wantHit(t, c, "c", []byte("c"))
	if err := c.Delete(ctxT(t)); err != nil {
		t.Fatalf("Delete with no keys: %v", err)
	}
}

func testInvalidateByTag(t *testing.T, c cache.Cache) {
	mustSet(t, c, "post:1", []byte("p1"), time.Minute, "c:posts", "r:posts:1")
	mustSet(t, c, "post:2", []byte("p2"), time.Minute, "c:posts", "r:posts:2")
	mustSet(t, c, "list", []byte("[1,2]"), time.Minute, "c:posts", "r:posts:1", "r:posts:2")
	mustSet(t, c, "user:1", []byte("u1"), time.Minute, "c:users", "r:users:1")
	mustSet(t, c, "untagged", []byte("u"), time.Minute)
	mustSet(t, c, "dup-tags", []byte("d"), time.Minute, "r:posts:2", "r:posts:2")

	ctx := ctxT(t)
	if err := c.Invalidate(ctx, "r:posts:1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	wantMiss(t, c, "post:1")
	wantMiss(t, c, "list")
	wantHit(t, c, "post:2", []byte("p2"))
	wantHit(t, c, "user:1", []byte("u1"))
	wantHit(t, c, "untagged", []byte("u"))

	// Invalidating a tag no entry carries is harmless.
	if err := c.Invalidate(ctx, "r:posts:999", "never-used"); err != nil {
		t.Fatalf("Invalidate unused tags: %v", err)
	}
	wantHit(t, c, "post:2", []byte("p2"))

	// Several tags at once; an entry set again after an invalidation lives.
	mustSet(t, c, "post:1", []byte("p1'"), time.Minute, "c:posts", "r:posts:1")
	if err := c.Invalidate(ctx, "r:posts:2", "c:users"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	wantMiss(t, c, "post:2")
	wantMiss(t, c, "user:1")
	wantMiss(t, c, "dup-tags")
	wantHit(t, c, "post:1", []byte("p1'"))
	wantHit(t, c, "untagged", []byte("u"))

	// A collection-wide tag drops everything in the collection.
	if err := c.Invalidate(ctx, "c:posts"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	wantMiss(t, c, "post:1")
	wantHit(t, c, "untagged", []byte("u"))
}

func testStampThenInvalidate(t *testing.T, c cache.Cache) {
	ctx := ctxT(t)
	// A value stamped before an invalidation must never be served.
	old, err := c.Stamp(ctx, "r:1")
	if err != nil {
		t.Fatalf("Stamp: %v", err)
	}
	if err := c.Invalidate(ctx, "r:1"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	if err := c.SetStamped(ctx, "k", []byte("stale"), time.Minute, old); err != nil {
		t.Fatalf("SetStamped: %v", err)
	}
	wantMiss(t, c, "k")

	// One stamped after it is served.
	fresh, err := c.Stamp(ctx, "r:1")
	if err != nil {
		t.Fatalf("Stamp: %v", err)
	}
	if err := c.SetStamped(ctx, "k", []byte("fresh"), time.Minute, fresh); err != nil {
		t.Fatalf("SetStamped: %v", err)
	}
	wantHit(t, c, "k", []byte("fresh"))

	if err := c.SetStamped(ctx, "k", []byte("x"), time.Minute, cache.Stamp{Tags: []string{"a"}}); err == nil {
		t.Fatal("SetStamped with a malformed stamp: no error")
	}
}

func testLoadOnce(t *testing.T, c cache.Cache) {
	l := cache.NewLoader(cache.LoaderConfig{Cache: c})
	const n = 64
	var calls atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) ([]byte, error) {
		calls.Add(1)
		<-release
		return []byte("loaded"), nil
	}

	var started, done sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			v, err := l.GetOrLoad(ctxT(t), "hot", time.Minute, []string{"c:hot"}, load)
			if err == nil && string(v) != "loaded" {
				err = fmt.Errorf("got %q", v)
			}
			errs <- err
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("GetOrLoad: %v", err)
		}
	}
	// Callers that arrive after the load find the value in the cache, so
	// the count is exact whatever the interleaving.
	if got := calls.Load(); got != 1 {
		t.Fatalf("load called %d times for %d concurrent callers, want 1", got, n)
	}
	wantHit(t, c, "hot", []byte("loaded"))
}

func testLoadRacesInvalidation(t *testing.T, c cache.Cache) {
	ctx := ctxT(t)
	l := cache.NewLoader(cache.LoaderConfig{Cache: c})
	tags := []string{"c:posts", "r:posts:7"}

	loading := make(chan struct{})
	release := make(chan struct{})
	first := make(chan []byte, 1)
	go func() {
		v, err := l.GetOrLoad(ctx, "post:7", time.Minute, tags, func(context.Context) ([]byte, error) {
			close(loading)
			<-release
			return []byte("old"), nil // read before the write below
		})
		if err != nil {
			t.Errorf("first GetOrLoad: %v", err)
		}
		first <- v
	}()

	<-loading
	// The write to record 7 commits and invalidates while the load runs.
	if err := c.Invalidate(ctx, "r:posts:7"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}

	// A request that starts after the invalidation must not join the load
	// in flight: it loads again and sees the new value.
	v, err := l.GetOrLoad(ctx, "post:7", time.Minute, tags, func(context.Context) ([]byte, error) {
		return []byte("new"), nil
	})
	if err != nil {
		t.Fatalf("second GetOrLoad: %v", err)
	}
	if string(v) != "new" {
		t.Fatalf("GetOrLoad after the invalidation = %q, want %q", v, "new")
	}

	close(release)
	if v := <-first; string(v) != "old" {
		t.Fatalf("first GetOrLoad = %q, want %q", v, "old")
	}
	// The stale load finished last and wrote its value over the fresh
	// one, under the old generation: it must not be served.
	if v, ok := get(t, c, "post:7"); ok && string(v) == "old" {
		t.Fatal("a value loaded before an invalidation was served after it")
	}
	v, err = l.GetOrLoad(ctx, "post:7", time.Minute, tags, func(context.Context) ([]byte, error) {
		return []byte("newer"), nil
	})
	if err != nil {
		t.Fatalf("third GetOrLoad: %v", err)
	}
	if string(v) != "newer" {
		t.Fatalf("GetOrLoad after the stale write = %q, want a fresh load", v)
	}
	if l.Loads() != 3 {
		t.Fatalf("Loads() = %d, want 3", l.Loads())
	}
}

func testLoadError(t *testing.T, c cache.Cache) {
	ctx := ctxT(t)
	l := cache.NewLoader(cache.LoaderConfig{Cache: c})
	boom := fmt.Errorf("source down")
	_, err := l.GetOrLoad(ctx, "k", time.Minute, nil, func(context.Context) ([]byte, error) { return nil, boom })
	if err != boom {
		t.Fatalf("GetOrLoad error = %v, want %v", err, boom)
	}
	wantMiss(t, c, "k")
	v, err := l.GetOrLoad(ctx, "k", time.Minute, nil, func(context.Context) ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(v) != "ok" {
		t.Fatalf("GetOrLoad after a failed load = %q, %v; want \"ok\"", v, err)
	}
	wantHit(t, c, "k", []byte("ok"))
}

func testLargeValue(t *testing.T, c cache.Cache) {
	big := make([]byte, 4<<20)
	rand.Read(big)
	mustSet(t, c, "big", big, time.Minute, "big")
	wantHit(t, c, "big", big)
}

func testBinaryValues(t *testing.T, c cache.Cache) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases := []struct {
		key   string
		value []byte
		tags  []string
	}{
		{"bytes", all, nil},
		{"empty", []byte{}, nil},
		{"key\x00with\nodd:bytes é", []byte("v"), []string{"tag\x00", "t:é", ""}},
		{"", []byte("empty key"), nil},
		{strings.Repeat("k", 1000), []byte("long key"), []string{strings.Repeat("t", 1000)}},
	}
	for _, tc := range cases {
		mustSet(t, c, tc.key, tc.value, time.Minute, tc.tags...)
	}
	for _, tc := range cases {
		wantHit(t, c, tc.key, tc.value)
	}
	// Set copies its input: changing the caller's slice changes nothing.
	buf := []byte("original")
	mustSet(t, c, "copied", buf, time.Minute)
	copy(buf, "mutated!")
	wantHit(t, c, "copied", []byte("original"))

	if err := c.Invalidate(ctxT(t), "tag\x00"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	wantMiss(t, c, "key\x00with\nodd:bytes é")
}

func testConcurrent(t *testing.T, c cache.Cache) {
	ctx := ctxT(t)
	const workers, ops, keys = 8, 200, 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ops {
				k := fmt.Sprintf("k%d", (w*7+i)%keys)
				tag := fmt.Sprintf("t%d", i%4)
				var err error
				switch i % 5 {
				case 0, 1:
					err = c.Set(ctx, k, []byte(k+"="+fmt.Sprint(w, i)), time.Minute, tag)
				case 2, 3:
					var v []byte
					var ok bool
					v, ok, err = c.Get(ctx, k)
					if err == nil && ok && !bytes.HasPrefix(v, []byte(k+"=")) {
						err = fmt.Errorf("Get(%q) = %q: value of another key", k, v)
					}
				case 4:
					if i%10 == 4 {
						err = c.Invalidate(ctx, tag)
					} else {
						err = c.Delete(ctx, k)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func testStats(t *testing.T, c cache.Cache) {
	s, ok := c.(statser)
	if !ok {
		t.Skip("the adapter keeps no stats")
	}
	mustSet(t, c, "k", []byte("v"), time.Minute)
	get(t, c, "k")
	get(t, c, "absent")
	got := s.Stats()
	if got.Hits != 1 || got.Misses != 1 || got.Errors != 0 {
		t.Fatalf("Stats() = %+v, want 1 hit, 1 miss, 0 errors", got)
	}
}
