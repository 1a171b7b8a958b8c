// Package ratelimit limits request rates with GCRA, the generic cell rate
// algorithm, per key (a client IP, a user, an API key, a route). Adapters
// keep the state: ratelimit/memory in-process, ratelimit/redis shared by
// every node. The package also holds what the HTTP layer needs: the
// RateLimit header fields and the client address behind trusted proxies.
//
// # GCRA
//
// A key's state is one time, its theoretical arrival time (TAT): when the
// key would be idle again had every allowed request been spaced by the
// emission interval T = Period/Rate. A request of cost n at time now is
// allowed when
//
//	max(TAT, now) + n·T − Burst·T <= now
//
// and then TAT becomes max(TAT, now) + n·T. An idle key can thus make
// Burst requests at once, and then one every T: never more than
// Burst + Rate·elapsed/Period requests in any interval of length elapsed.
// The arithmetic is in integers (nanoseconds in memory, microseconds in
// Redis) with T truncated to a microsecond, so decisions are exact: the
// Burst-th request of a burst is allowed and the next one is not, with no
// rounding either way. A key whose TAT is past holds no information and
// is dropped.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limiter decides whether a request may proceed.
type Limiter interface {
	// Allow records a request of cost n (usually 1) against key under l
	// and reports whether it is allowed. A denied request costs nothing.
	// n == 0 reports the key's state without changing it.
	//
	// The error is non-nil only for arguments that can never be decided:
	// an invalid l (wrapping ErrInvalidLimit), a negative n or n above
	// the burst (ErrInvalidCost), or the end of ctx. When the backend
	// fails, adapters return the decision of their FailPolicy, with
	// Result.Fallback set, and a nil error.
	Allow(ctx context.Context, key string, l Limit, n int) (Result, error)
}

// Result is a decision of a Limiter.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Remaining is how many more requests of cost 1 the key could make
	// right now (after this one, when it was allowed).
	Remaining int
	// RetryAfter is, for a denied request, how long until the same request
	// would be allowed; zero for an allowed one.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is idle again, with its whole
	// burst available.
	ResetAfter time.Duration
	// Limit is the limit the decision applied.
	Limit Limit
	// Fallback reports that the backend failed and the decision is the
	// adapter's FailPolicy, not the key's state.
	Fallback bool
}

// FailPolicy decides requests when a limiter's backend cannot be reached.
type FailPolicy int

const (
	// FailOpen allows requests: availability before protection.
	FailOpen FailPolicy = iota
	// FailClosed denies requests: protection before availability.
	FailClosed
)

// String returns "open" or "closed".
func (p FailPolicy) String() string {
	if p == FailClosed {
		return "closed"
	}
	return "open"
}

// Fallback returns the decision of policy for a request of cost n under l
// when the backend failed. A denial asks the client to retry after
// retryAfter.
func (p FailPolicy) Fallback(l Limit, n int, retryAfter time.Duration) Result {
	if p == FailClosed {
		return Result{RetryAfter: retryAfter, Limit: l, Fallback: true}
	}
	return Result{Allowed: true, Remaining: max(l.burst()-n, 0), Limit: l, Fallback: true}
}

// ErrInvalidCost is returned by Allow for a cost that no state of the key
// could allow: negative, or larger than the burst.
var ErrInvalidCost = errors.New("invalid request cost")

// Check validates the arguments of Allow; adapters call it first.
func Check(l Limit, n int) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if n < 0 || n > l.burst() {
		return fmt.Errorf("%w: %d, want 0 to %d (the burst)", ErrInvalidCost, n, l.burst())
	}
	return nil
}

// Decision is the outcome of one GCRA step in some integer time unit.
type Decision struct {
	Allowed    bool
	TAT        int64 // the key's new TAT (unchanged when denied)
	Remaining  int64
	RetryAfter int64
	ResetAfter int64
}

// GCRA decides a request of cost n at time now for a key whose TAT is tat
// (any value at or before now for an idle key), with emission interval
// interval and burst burst. All times are in one integer unit. Callers
// ensure interval > 0, 0 <= n <= burst and that burst·interval and the
// times do not overflow.
func GCRA(now, tat, interval, burst, n int64) Decision {
	tat = max(tat, now)
	newTAT := tat + n*interval
	allowAt := newTAT - burst*interval
	if allowAt <= now {
		return Decision{
			Allowed:    true,
			TAT:        newTAT,
			Remaining:  (now - allowAt) / interval,
			ResetAfter: newTAT - now,
		}
	}
	return Decision{
		TAT: tat,
		// Not negative unless the key's limit was lowered since its TAT
		// was set.
		Remaining:  max(now-(tat-burst*interval), 0) / interval,
		RetryAfter: allowAt - now,
		ResetAfter: tat - now,
	}
}

// Result converts d, in units of unit, to a Result under l.
func (d Decision) Result(l Limit, unit time.Duration) Result {
	return Result{
		Allowed:    d.Allowed,
		Remaining:  int(d.Remaining),
		RetryAfter: time.Duration(d.RetryAfter) * unit,
		ResetAfter: time.Duration(d.ResetAfter) * unit,
		Limit:      l,
	}
}

// EffectiveBurst returns the burst l allows: Burst, or Rate when Burst is
// zero.
func (l Limit) EffectiveBurst() int { return l.burst() }
