package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/storetest"
)

func TestThrottleSurvivesRestart(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			db := storetest.Open(t, engine)
			ctx := context.Background()
			now := time.Now()
			keys := Keys("members", "Ada@Example.com ", "192.0.2.7")
			first := NewThrottle(db)
			for range 8 {
				if err := first.Fail(ctx, keys, now); err != nil {
					t.Fatal(err)
				}
			}
			restarted := NewThrottle(db)
			err := restarted.Check(ctx, Keys("members", "ada@example.com", "198.51.100.1"), now)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Kind != apperr.RateLimited || ae.RetryAfter != 4 {
				t.Fatalf("after a restart: %v (retry after %v), want a lock of 4s", err, ae)
			}
			if err := restarted.Check(ctx, keys, now.Add(5*time.Second)); err != nil {
				t.Errorf("lock did not end: %v", err)
			}
		})
	}
}

func TestThrottleLocks(t *testing.T) {
	th := &Throttle{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for n, want := range map[int]time.Duration{1: 0, 5: 0, 6: time.Second, 7: 2 * time.Second, 10: 16 * time.Second, 20: 15 * time.Minute, 1000: 15 * time.Minute} {
		if got := th.lock(n); got != want {
			t.Errorf("lock(%d) = %v, want %v", n, got, want)
		}
	}
}
