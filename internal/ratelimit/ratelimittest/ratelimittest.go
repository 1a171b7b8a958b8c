// Package ratelimittest is the behavioural suite of ratelimit.Limiter:
// every adapter runs it with its own constructor.
package ratelimittest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
)

// Harness is what the suite needs from an adapter for one test.
type Harness struct {
	// Limiter is the limiter under test, with no keys yet.
	Limiter ratelimit.Limiter
	// Peer shares Limiter's state as another node would (another client
	// of the same Redis); an in-process adapter passes Limiter again.
	Peer ratelimit.Limiter
	// Sleep lets d pass on the limiter's clock: it advances a fake clock,
	// or sleeps.
	Sleep func(d time.Duration)
	// Exact is true when the clock only moves in Sleep, so that durations
	// can be asserted exactly. Otherwise the suite allows Slack.
	Exact bool
}

// Slack is how far reported durations may lag behind the exact values
// when the clock is real: the time taken between the calls of a test.
const Slack = 500 * time.Millisecond

// Run runs the suite against the harnesses open returns. Subtests run in
// parallel, each with a harness of its own.
func Run(t *testing.T, open func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"BurstThenDeny", testBurstThenDeny},
		{"Cost", testCost},
		{"RetryAfter", testRetryAfter},
		{"SteadyRate", testSteadyRate},
		{"IdleKeyResets", testIdleKeyResets},
		{"KeysIndependent", testKeysIndependent},
		{"Concurrent", testConcurrent},
		{"InvalidArguments", testInvalidArguments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func allow(t *testing.T, l ratelimit.Limiter, key string, lim ratelimit.Limit, n int) ratelimit.Result {
	t.Helper()
	r, err := l.Allow(t.Context(), key, lim, n)
	if err != nil {
		t.Fatalf("Allow(%q, %v, %d): %v", key, lim, n, err)
	}
	if r.Fallback {
		t.Fatalf("Allow(%q, %v, %d): a fallback decision; the backend failed", key, lim, n)
	}
	if r.Limit != lim {
		t.Fatalf("Allow(%q, %v, %d).Limit = %v", key, lim, n, r.Limit)
	}
	return r
}

// near asserts that got is want, or, on a real clock, at most Slack less.
func near(t *testing.T, h Harness, what string, got, want time.Duration) {
	t.Helper()
	if h.Exact && got != want || got > want || got < want-Slack {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testBurstThenDeny(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 5, Period: time.Hour, Burst: 5} // one per 12 minutes
	for i := range 5 {
		r := allow(t, h.Limiter, "k", lim, 1)
		if !r.Allowed || r.Remaining != 4-i || r.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, r, 4-i)
		}
		near(t, h, fmt.Sprintf("request %d ResetAfter", i+1), r.ResetAfter, time.Duration(i+1)*12*time.Minute)
	}
	r := allow(t, h.Limiter, "k", lim, 1)
	if r.Allowed || r.Remaining != 0 {
		t.Fatalf("request 6: %+v, want denied with 0 remaining", r)
	}
	near(t, h, "RetryAfter", r.RetryAfter, 12*time.Minute)
	near(t, h, "ResetAfter", r.ResetAfter, time.Hour)
}

func testCost(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 10} // one per 6 minutes
	for _, want := range []int{6, 2} {
		if r := allow(t, h.Limiter, "k", lim, 4); !r.Allowed || r.Remaining != want {
			t.Fatalf("cost 4: %+v, want allowed with %d remaining", r, want)
		}
	}
	r := allow(t, h.Limiter, "k", lim, 4)
	if r.Allowed || r.Remaining != 2 {
		t.Fatalf("cost 4 with 2 left: %+v, want denied with 2 remaining", r)
	}
	near(t, h, "RetryAfter for 2 missing units", r.RetryAfter, 12*time.Minute)

	// Cost 0 reports the state and consumes nothing.
	for range 2 {
		if r := allow(t, h.Limiter, "k", lim, 0); !r.Allowed || r.Remaining != 2 {
			t.Fatalf("cost 0: %+v, want allowed with 2 remaining", r)
		}
	}
	if r := allow(t, h.Limiter, "k", lim, 2); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("cost 2 with 2 left: %+v, want allowed with 0 remaining", r)
	}
	if r := allow(t, h.Limiter, "k", lim, 1); r.Allowed {
		t.Fatalf("cost 1 with 0 left: %+v, want denied", r)
	}
	// A fresh key pays a full burst at once.
	if r := allow(t, h.Limiter, "k2", lim, 10); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("cost = burst on a fresh key: %+v, want allowed with 0 remaining", r)
	}
}

func testRetryAfter(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 1} // one per 100ms
	if r := allow(t, h.Limiter, "k", lim, 1); !r.Allowed {
		t.Fatalf("first request: %+v, want allowed", r)
	}
	r := allow(t, h.Limiter, "k", lim, 1)
	if r.Allowed {
		t.Fatalf("second request: %+v, want denied", r)
	}
	near(t, h, "RetryAfter", r.RetryAfter, 100*time.Millisecond)
	if h.Exact {
		// One microsecond early is still too early.
		h.Sleep(r.RetryAfter - time.Microsecond)
		if r := allow(t, h.Limiter, "k", lim, 1); r.Allowed || r.RetryAfter != time.Microsecond {
			t.Fatalf("1µs before RetryAfter: %+v, want denied, retry after 1µs", r)
		}
		h.Sleep(time.Microsecond)
	} else {
		h.Sleep(r.RetryAfter)
	}
	if r := allow(t, h.Limiter, "k", lim, 1); !r.Allowed {
		t.Fatalf("after RetryAfter: %+v, want allowed", r)
	}
}

func testSteadyRate(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 20, Period: time.Second, Burst: 2} // one per 50ms
	const step = 10 * time.Millisecond
	const span = 500 * time.Millisecond
	start := time.Now()
	allowed := 0
	for elapsed := time.Duration(0); elapsed <= span; elapsed += step {
		if r := allow(t, h.Limiter, "k", lim, 1); r.Allowed {
			allowed++
		}
		h.Sleep(step)
	}
	// Burst at once, then one per interval: 2 + 500ms/50ms.
	want := 2 + int(span/lim.Interval())
	if h.Exact {
		if allowed != want {
			t.Fatalf("%d requests allowed over %v, want %d", allowed, span, want)
		}
		return
	}
	// On a real clock the loop runs longer than span; never more than the
	// limit over the real elapsed time, and not much fewer.
	most := 2 + int(time.Since(start)/lim.Interval())
	if allowed > most || allowed < want-3 {
		t.Fatalf("%d requests allowed over %v, want %d to %d", allowed, time.Since(start), want-3, most)
	}
}

func testIdleKeyResets(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 100, Period: time.Second, Burst: 3} // one per 10ms
	var r ratelimit.Result
	for range 3 {
		r = allow(t, h.Limiter, "k", lim, 1)
	}
	if !r.Allowed || r.Remaining != 0 {
		t.Fatalf("third request: %+v, want allowed with 0 remaining", r)
	}
	h.Sleep(r.ResetAfter)
	if r := allow(t, h.Limiter, "k", lim, 0); r.Remaining != 3 || r.ResetAfter != 0 {
		t.Fatalf("after ResetAfter: %+v, want the whole burst (3) and nothing to reset", r)
	}
}

func testKeysIndependent(t *testing.T, h Harness) {
	lim := ratelimit.Limit{Rate: 2, Period: time.Hour, Burst: 2}
	for range 2 {
		allow(t, h.Limiter, "a", lim, 1)
	}
	if r := allow(t, h.Limiter, "a", lim, 1); r.Allowed {
		t.Fatalf("key a after its burst: %+v, want denied", r)
	}
	for _, key := range []string{"b", "a:", "A", ""} {
		if r := allow(t, h.Limiter, key, lim, 1); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("key %q: %+v, want allowed with 1 remaining", key, r)
		}
	}
}

func testConcurrent(t *testing.T, h Harness) {
	// One request per 72s: no refill while the test runs, so exactly the
	// burst gets through, whichever node each request goes to.
	lim := ratelimit.Limit{Rate: 50, Period: time.Hour, Burst: 50}
	const workers, each = 16, 20
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		l := h.Limiter
		if w%2 == 1 {
			l = h.Peer
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r, err := l.Allow(context.Background(), "hot", lim, 1)
				if err == nil && r.Fallback {
					err = errors.New("fallback decision")
				}
				if err != nil {
					errs <- err
					return
				}
				if r.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Allow: %v", err)
	}
	if got := allowed.Load(); got != 50 {
		t.Fatalf("%d of %d concurrent requests allowed, want exactly the burst, 50", got, workers*each)
	}
}

func testInvalidArguments(t *testing.T, h Harness) {
	ctx := t.Context()
	lim := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}
	for _, tc := range []struct {
		lim  ratelimit.Limit
		n    int
		want error
	}{
		{ratelimit.Limit{}, 1, ratelimit.ErrInvalidLimit},
		{ratelimit.Limit{Rate: 10, Period: time.Nanosecond}, 1, ratelimit.ErrInvalidLimit},
		{lim, -1, ratelimit.ErrInvalidCost},
		{lim, 6, ratelimit.ErrInvalidCost},
	} {
		if _, err := h.Limiter.Allow(ctx, "k", tc.lim, tc.n); !errors.Is(err, tc.want) {
			t.Errorf("Allow(%+v, %d) error = %v, want %v", tc.lim, tc.n, err, tc.want)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Limiter.Allow(cancelled, "k", lim, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow with a cancelled context: error = %v, want context.Canceled", err)
	}
}
