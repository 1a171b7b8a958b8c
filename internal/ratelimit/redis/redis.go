// Package redis is the Redis adapter of ratelimit.Limiter, shared by every
// node: each decision is one Lua script (EVALSHA, falling back to EVAL
// when the server does not have it cached) that reads the key's TAT,
// applies GCRA at Redis's own clock (TIME), and writes the new TAT with an
// expiry at that TAT. Nodes therefore agree whatever their clocks say, and
// a decision is atomic however many nodes race on one key. It needs
// Redis 5 or later; each decision touches one key, so it works on Redis
// Cluster too.
//
// When Redis cannot be reached within Config.Timeout, Allow returns the
// decision of Config.FailPolicy with Result.Fallback set, counts the
// failure (Errors) and reports it to Config.OnError.
package redis

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/ratelimit"
)

// Defaults for zero Config fields.
const (
	DefaultPrefix         = "strata:rl:"
	DefaultTimeout        = 100 * time.Millisecond
	DefaultFailRetryAfter = time.Second
)

// Config configures a Limiter.
type Config struct {
	// Client reaches Redis: a *redis.Client, *redis.ClusterClient or
	// *redis.Ring. Required; the Limiter does not close it. Its own dial
	// and read timeouts and retries apply within Timeout; keep them short.
	Client goredis.UniversalClient
	// Prefix starts every key the Limiter writes.
	Prefix string
	// Timeout bounds each decision, whatever the caller's deadline.
	Timeout time.Duration
	// FailPolicy decides requests when Redis fails: FailOpen (the
	// default) or FailClosed.
	FailPolicy ratelimit.FailPolicy
	// FailRetryAfter is the RetryAfter of requests denied by FailClosed.
	FailRetryAfter time.Duration
	// OnError, if set, is called with each Redis failure; it must be safe
	// for concurrent use. It is meant for logging.
	OnError func(error)
}

// Limiter is a ratelimit.Limiter in Redis. It is safe for concurrent use.
type Limiter struct {
	client     goredis.UniversalClient
	prefix     string
	timeout    time.Duration
	policy     ratelimit.FailPolicy
	failRetry  time.Duration
	onError    func(error)
	errorCount atomic.Uint64
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter configured by cfg. It does not contact Redis.
func New(cfg Config) (*Limiter, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis limiter: no client")
	}
	if cfg.Timeout < 0 || cfg.FailRetryAfter < 0 {
		return nil, errors.New("redis limiter: negative duration in config")
	}
	if cfg.FailPolicy != ratelimit.FailOpen && cfg.FailPolicy != ratelimit.FailClosed {
		return nil, fmt.Errorf("redis limiter: unknown fail policy %d", cfg.FailPolicy)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.FailRetryAfter == 0 {
		cfg.FailRetryAfter = DefaultFailRetryAfter
	}
	return &Limiter{
		client:    cfg.Client,
		prefix:    cfg.Prefix,
		timeout:   cfg.Timeout,
		policy:    cfg.FailPolicy,
		failRetry: cfg.FailRetryAfter,
		onError:   cfg.OnError,
	}, nil
}

// script applies one GCRA step. Times are integer microseconds, exact in
// Lua's doubles below 2^53 (Validate keeps Burst × interval under 2^50).
//
//	KEYS[1]  the key's TAT
//	ARGV     emission interval, burst, cost
//	returns  {allowed (0 or 1), remaining, retry after, reset after}
var script = goredis.NewScript(`
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2]) * interval
local cost = tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end

-- floor(a / b) for non-negative integers, exact.
local function div(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance
if allow_at <= now then
  if new_tat > now then
    local ttl = math.ceil((new_tat - now) / 1000)
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
  end
  return {1, div(now - allow_at, interval), 0, new_tat - now}
end
return {0, div(math.max(now - tat + tolerance, 0), interval), allow_at - now, tat - now}
`)

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit, n int) (ratelimit.Result, error) {
	if err := ratelimit.Check(lim, n); err != nil {
		return ratelimit.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Result{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()

	interval := lim.Interval() / time.Microsecond
	vals, err := script.Run(rctx, l.client, []string{l.prefix + key},
		int64(interval), lim.EffectiveBurst(), n).Int64Slice()
	if err == nil && len(vals) != 4 {
		err = fmt.Errorf("script returned %d values, want 4", len(vals))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ratelimit.Result{}, ctx.Err() // the caller gave up, Redis did not fail
		}
		l.errorCount.Add(1)
		if l.onError != nil {
			l.onError(fmt.Errorf("redis limiter: %w", err))
		}
		return l.policy.Fallback(lim, n, l.failRetry), nil
	}
	d := ratelimit.Decision{
		Allowed:    vals[0] == 1,
		Remaining:  vals[1],
		RetryAfter: vals[2],
		ResetAfter: vals[3],
	}
	return d.Result(lim, time.Microsecond), nil
}

// Errors returns how many decisions fell back to the FailPolicy.
func (l *Limiter) Errors() uint64 { return l.errorCount.Load() }
