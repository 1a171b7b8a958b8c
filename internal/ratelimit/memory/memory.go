// Package memory is the in-process adapter of ratelimit.Limiter: GCRA
// state in a sharded map, in nanoseconds of a monotonic clock.
//
// A key is kept only while its TAT is in the future, that is at most
// Burst × Period/Rate after its last allowed request; a janitor drops the
// others every CleanupInterval, so memory follows the number of keys
// active recently, not all keys ever seen.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/strata-dev/strata/internal/ratelimit"
)

// Defaults for zero Config fields.
const (
	DefaultShards          = 64
	DefaultCleanupInterval = time.Minute
)

// Config configures a Limiter.
type Config struct {
	// Now reads the clock; time.Now when nil. Tests pass a fake clock.
	Now func() time.Time
	// Shards is the number of independently locked shards of the state.
	Shards int
	// CleanupInterval is how often the janitor drops idle keys; a
	// negative value disables the janitor (call Cleanup instead).
	CleanupInterval time.Duration
}

// Limiter is an in-process ratelimit.Limiter. It is safe for concurrent
// use; Close stops its janitor.
type Limiter struct {
	now    func() time.Time
	epoch  time.Time
	seed   maphash.Seed
	shards []shard

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type shard struct {
	mu   sync.Mutex
	tats map[string]int64 // nanoseconds since epoch
	_    [40]byte         // keeps shards on separate cache lines
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter configured by cfg, with its janitor running.
func New(cfg Config) *Limiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.CleanupInterval == 0 {
		cfg.CleanupInterval = DefaultCleanupInterval
	}
	l := &Limiter{
		now:    cfg.Now,
		epoch:  cfg.Now(),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, cfg.Shards),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for i := range l.shards {
		l.shards[i].tats = make(map[string]int64)
	}
	if cfg.CleanupInterval > 0 {
		go l.janitor(cfg.CleanupInterval)
	} else {
		close(l.done)
	}
	return l
}

// clock returns the current time in nanoseconds since the epoch; with
// time.Now it is monotonic.
func (l *Limiter) clock() int64 { return int64(l.now().Sub(l.epoch)) }

func (l *Limiter) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, lim ratelimit.Limit, n int) (ratelimit.Result, error) {
	if err := ratelimit.Check(lim, n); err != nil {
		return ratelimit.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Result{}, err
	}
	interval := int64(lim.Interval())
	burst := int64(lim.EffectiveBurst())

	s := l.shard(key)
	s.mu.Lock()
	now := l.clock()
	tat, ok := s.tats[key]
	if !ok {
		tat = now
	}
	d := ratelimit.GCRA(now, tat, interval, burst, int64(n))
	if d.Allowed && d.TAT > now {
		s.tats[key] = d.TAT
	}
	s.mu.Unlock()
	return d.Result(lim, time.Nanosecond), nil
}

// Cleanup drops the keys whose TAT is past.
func (l *Limiter) Cleanup() {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		now := l.clock()
		for k, tat := range s.tats {
			if tat <= now {
				delete(s.tats, k)
			}
		}
		s.mu.Unlock()
	}
}

// Len returns the number of keys held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

func (l *Limiter) janitor(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.Cleanup()
		case <-l.stop:
			return
		}
	}
}

// Close stops the janitor and waits for it. The Limiter still works
// afterwards, without the janitor.
func (l *Limiter) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}
