package redis

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/ratelimit/ratelimittest"
	"github.com/strata-dev/strata/internal/redistest"
)

func open(t testing.TB, client goredis.UniversalClient, prefix string) *Limiter {
	t.Helper()
	l, err := New(Config{Client: client, Prefix: prefix, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// The suite runs with two clients, as two nodes: half of the concurrent
// requests go through each, and the limit holds across them.
func TestSuite(t *testing.T) {
	a, b := redistest.Client(t), redistest.Client(t)
	ratelimittest.Run(t, func(t *testing.T) ratelimittest.Harness {
		prefix := redistest.Prefix(t)
		return ratelimittest.Harness{Limiter: open(t, a, prefix), Peer: open(t, b, prefix), Sleep: time.Sleep}
	})
}

func TestConfig(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	for _, cfg := range []Config{
		{},
		{Client: client, Timeout: -1},
		{Client: client, FailPolicy: ratelimit.FailPolicy(7)},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

// The script is loaded again when Redis forgets it (a restart, SCRIPT
// FLUSH, a failover).
func TestScriptReloaded(t *testing.T) {
	client := redistest.Client(t)
	l := open(t, client, redistest.Prefix(t))
	lim := ratelimit.Limit{Rate: 10, Period: time.Minute, Burst: 10}
	ctx := t.Context()
	for i := range 3 {
		if err := client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		r, err := l.Allow(ctx, "k", lim, 1)
		if err != nil || !r.Allowed || r.Fallback || r.Remaining != 9-i {
			t.Fatalf("Allow after SCRIPT FLUSH = %+v, %v; want allowed with %d remaining", r, err, 9-i)
		}
	}
}

// The key expires with its TAT, so idle keys cost Redis nothing.
func TestKeyExpires(t *testing.T) {
	client := redistest.Client(t)
	prefix := redistest.Prefix(t)
	l := open(t, client, prefix)
	lim := ratelimit.Limit{Rate: 1, Period: time.Minute}
	if _, err := l.Allow(t.Context(), "k", lim, 1); err != nil {
		t.Fatal(err)
	}
	ttl, err := client.PTTL(t.Context(), prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 59*time.Second || ttl > time.Minute {
		t.Fatalf("PTTL = %v, want about a minute", ttl)
	}
	if _, err := l.Allow(t.Context(), "peek", lim, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Exists(t.Context(), prefix+"peek").Result(); n != 0 {
		t.Fatal("a peek (cost 0) wrote a key")
	}
}

// Redis goes away: decisions come back promptly under the fail policy,
// are counted and reported; when Redis is back the same Limiter (and
// client) decides from its state again.
func TestRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	client := goredis.NewClient(&goredis.Options{
		Addr:         srv.Addr(),
		DialTimeout:  100 * time.Millisecond,
		ReadTimeout:  100 * time.Millisecond,
		WriteTimeout: 100 * time.Millisecond,
		MaxRetries:   1,
	})
	t.Cleanup(func() { client.Close() })
	var reported atomic.Int32
	newLimiter := func(p ratelimit.FailPolicy) *Limiter {
		l, err := New(Config{
			Client: client, Prefix: redistest.Prefix(t), Timeout: 300 * time.Millisecond,
			FailPolicy: p, FailRetryAfter: 2 * time.Second,
			OnError: func(error) { reported.Add(1) },
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	failOpen, failClosed := newLimiter(ratelimit.FailOpen), newLimiter(ratelimit.FailClosed)
	lim := ratelimit.Limit{Rate: 3, Period: time.Hour, Burst: 3}
	ctx := t.Context()
	for _, l := range []*Limiter{failOpen, failClosed} {
		if r, err := l.Allow(ctx, "k", lim, 1); err != nil || !r.Allowed || r.Fallback {
			t.Fatalf("Allow with Redis up = %+v, %v", r, err)
		}
	}

	srv.Stop()
	for _, tc := range []struct {
		l           *Limiter
		wantAllowed bool
	}{{failOpen, true}, {failClosed, false}} {
		start := time.Now()
		r, err := tc.l.Allow(ctx, "k", lim, 1)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Allow with Redis down took %v, want < 1s", took)
		}
		if err != nil {
			t.Fatalf("Allow with Redis down: %v, want the fail policy's decision", err)
		}
		if !r.Fallback || r.Allowed != tc.wantAllowed {
			t.Fatalf("Allow with Redis down, fail %v = %+v, want a fallback with Allowed %v", tc.l.policy, r, tc.wantAllowed)
		}
		if !r.Allowed && r.RetryAfter != 2*time.Second {
			t.Fatalf("fail-closed RetryAfter = %v, want 2s", r.RetryAfter)
		}
		if tc.l.Errors() != 1 {
			t.Fatalf("Errors() = %d, want 1", tc.l.Errors())
		}
	}
	if reported.Load() != 2 {
		t.Fatalf("OnError called %d times, want 2", reported.Load())
	}

	// The caller giving up is not a backend failure.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := failClosed.Allow(cancelled, "k", lim, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context = %v, want context.Canceled", err)
	}

	srv.Start() // a new, empty server: the state is gone, the script too
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := failClosed.Allow(ctx, "k", lim, 1)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Fallback {
			if !r.Allowed || r.Remaining != 2 {
				t.Fatalf("Allow after recovery = %+v, want allowed with 2 remaining", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the limiter did not recover after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := open(b, redistest.Client(b), redistest.Prefix(b))
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	for b.Loop() {
		if r, err := l.Allow(ctx, "key", lim, 1); err != nil || r.Fallback {
			b.Fatal(err, r)
		}
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := open(b, redistest.Client(b), redistest.Prefix(b))
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1_000_000}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := l.Allow(ctx, "key", lim, 1); err != nil || r.Fallback {
				b.Fatal(err, r)
			}
		}
	})
}
