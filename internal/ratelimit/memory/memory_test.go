package memory

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/ratelimit/ratelimittest"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func open(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l := New(cfg)
	t.Cleanup(func() { l.Close() })
	return l
}

func TestSuite(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimittest.Harness {
		clock := newFakeClock()
		l := open(t, Config{Now: clock.Now, CleanupInterval: -1})
		return ratelimittest.Harness{Limiter: l, Peer: l, Sleep: clock.Advance, Exact: true}
	})
}

// The suite on the real clock too: nothing in the adapter depends on a
// fake one.
func TestSuiteRealClock(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimittest.Harness {
		l := open(t, Config{})
		return ratelimittest.Harness{Limiter: l, Peer: l, Sleep: time.Sleep}
	})
}

func TestCleanup(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	l := open(t, Config{Now: clock.Now, CleanupInterval: -1})
	lim := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 10}
	for i := range 1000 {
		if _, err := l.Allow(ctx, fmt.Sprint("k", i), lim, 1+i%10); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("Len() = %d, want 1000", n)
	}
	// Keys charged 1 to 10 units have a TAT 100ms to 1s ahead.
	clock.Advance(500 * time.Millisecond)
	l.Cleanup()
	if n := l.Len(); n != 500 {
		t.Fatalf("Len() after 500ms = %d, want 500 (those charged more than 5 units)", n)
	}
	clock.Advance(500 * time.Millisecond)
	l.Cleanup()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len() after 1s = %d, want 0", n)
	}
	// A peek (cost 0) stores nothing.
	if _, err := l.Allow(ctx, "peek", lim, 0); err != nil {
		t.Fatal(err)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Len() after a peek = %d, want 0", n)
	}
}

func TestJanitor(t *testing.T) {
	clock := newFakeClock()
	l := open(t, Config{Now: clock.Now, CleanupInterval: time.Millisecond})
	lim := ratelimit.Limit{Rate: 1, Period: time.Second}
	if _, err := l.Allow(context.Background(), "k", lim, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for l.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the janitor did not drop an idle key in 5s")
		}
		time.Sleep(time.Millisecond)
	}
	l.Close()
	l.Close() // idempotent
}

func BenchmarkAllow(b *testing.B) {
	l := open(b, Config{})
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Allow(ctx, "key", lim, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := open(b, Config{})
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprint("203.0.113.", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Allow(ctx, keys[i&4095], lim, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkAllowParallelOneKey(b *testing.B) {
	l := open(b, Config{})
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Allow(ctx, "key", lim, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
