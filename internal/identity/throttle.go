package identity

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/store"
)

// Throttle slows down password guessing, per account and per client
// address: after a few failures each further one locks sign-in for a time
// that doubles, up to a ceiling. Counts are kept in the database, so a
// restart does not reset them.
type Throttle struct {
	DB *store.DB
	// Free is how many failures pass without a lock.
	Free int
	// Base is the first lock; each failure after doubles it, up to Max.
	Base, Max time.Duration
	// Forget is how long after the last failure the count starts again.
	Forget time.Duration
}

// NewThrottle returns a Throttle with the defaults: 5 free failures, then
// 1s, 2s, 4s ... up to 15 minutes; counts forgotten after a day.
func NewThrottle(db *store.DB) *Throttle {
	return &Throttle{DB: db, Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
}

func (t *Throttle) lock(failures int) time.Duration {
	n := failures - t.Free
	if n <= 0 {
		return 0
	}
	d := time.Duration(float64(t.Base) * math.Pow(2, float64(min(n-1, 30))))
	return min(d, t.Max)
}

// Keys names the counters of a sign-in: the account and the address.
func Keys(scope, email, ip string) []string {
	return []string{"account:" + scope + ":" + strings.ToLower(strings.TrimSpace(email)), "ip:" + ip}
}

// Check refuses with RateLimited (and when to retry) while any key is
// locked.
func (t *Throttle) Check(ctx context.Context, keys []string, now time.Time) error {
	for _, k := range keys {
		until, err := store.LockedUntil(ctx, t.DB.Reader(), t.DB.Dialect(), k, now)
		if err != nil {
			return err
		}
		if !until.IsZero() {
			return &apperr.Error{Kind: apperr.RateLimited, Msg: "too many failed sign-ins; try again later",
				RetryAfter: int(math.Ceil(until.Sub(now).Seconds()))}
		}
	}
	return nil
}

// Fail counts a failed sign-in under every key.
func (t *Throttle) Fail(ctx context.Context, keys []string, now time.Time) error {
	return t.DB.Write(ctx, func(tx *store.Tx) error {
		for _, k := range keys {
			if err := store.RecordFailure(ctx, tx, k, now, t.Forget, t.lock); err != nil {
				return err
			}
		}
		return nil
	})
}

// Succeed forgets the failures of the account (not of the address: one
// good password does not clear a guesser's record).
func (t *Throttle) Succeed(ctx context.Context, keys []string) error {
	return t.DB.Write(ctx, func(tx *store.Tx) error {
		return store.ClearFailures(ctx, tx, keys[0])
	})
}
