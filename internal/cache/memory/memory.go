// Package memory is the in-process adapter of cache.Cache, on otter: a
// bounded cache (by bytes or by entries) with a time to live per entry.
//
// Tag generations live in a second bounded otter cache. A generation is a
// number drawn from one counter, so every generation this cache ever
// hands out is distinct; an evicted or expired generation reads as zero,
// which makes the entries under that tag misses (never stale hits).
// Invalidations are immediate for every later Get in this process; the
// cache is not shared with other processes.
package memory

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/strata-dev/strata/internal/cache"
)

// Defaults for zero Config fields.
const (
	DefaultMaxBytes = 64 << 20
	DefaultTTL      = 5 * time.Minute
	DefaultMaxTags  = 1 << 20
	DefaultTagTTL   = 24 * time.Hour
)

// entryOverhead approximates the bytes an entry costs beyond its key,
// value and tags: the node, the entry struct and slice headers.
const entryOverhead = 96

// Config configures a Cache. The zero value is a 64 MiB cache.
type Config struct {
	// MaxBytes bounds the cache by the approximate memory of its entries
	// (keys, values, tags and a fixed overhead per entry). It is the
	// default bound: DefaultMaxBytes when neither bound is set.
	MaxBytes uint64
	// MaxEntries bounds the cache by the number of entries instead; it
	// cannot be combined with MaxBytes.
	MaxEntries int
	// DefaultTTL is the time to live of entries set with ttl <= 0.
	DefaultTTL time.Duration
	// MaxTags bounds the number of tag generations kept. A generation
	// dropped to stay under the bound makes the entries under its tag
	// misses, so it should exceed the number of tags in live entries.
	MaxTags int
	// TagTTL is how long a tag generation is kept after it was last used.
	TagTTL time.Duration
}

// Cache is an in-process cache.Cache. It is safe for concurrent use.
type Cache struct {
	entries    *otter.Cache[string, *entry]
	tags       *otter.Cache[string, uint64]
	seq        atomic.Uint64
	defaultTTL time.Duration

	hits, misses atomic.Uint64
}

// entry is a stored value. It is never modified after it is stored.
type entry struct {
	value []byte
	tags  []string
	gens  []uint64
	ttl   time.Duration
}

var _ cache.Cache = (*Cache)(nil)

// New returns a Cache configured by cfg.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes > 0 && cfg.MaxEntries > 0 {
		return nil, fmt.Errorf("memory cache: MaxBytes and MaxEntries are exclusive")
	}
	if cfg.MaxEntries < 0 || cfg.MaxTags < 0 || cfg.DefaultTTL < 0 || cfg.TagTTL < 0 {
		return nil, fmt.Errorf("memory cache: negative bound in config")
	}
	if cfg.MaxBytes == 0 && cfg.MaxEntries == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.MaxTags == 0 {
		cfg.MaxTags = DefaultMaxTags
	}
	if cfg.TagTTL == 0 {
		cfg.TagTTL = DefaultTagTTL
	}

	opts := &otter.Options[string, *entry]{
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *entry]) time.Duration {
			return e.Value.ttl
		}),
	}
	if cfg.MaxEntries > 0 {
		opts.MaximumSize = cfg.MaxEntries
	} else {
		opts.MaximumWeight = cfg.MaxBytes
		opts.Weigher = weigh
	}
	entries, err := otter.New(opts)
	if err != nil {
		return nil, fmt.Errorf("memory cache: %w", err)
	}
	tags, err := otter.New(&otter.Options[string, uint64]{
		MaximumSize:      cfg.MaxTags,
		ExpiryCalculator: otter.ExpiryAccessing[string, uint64](cfg.TagTTL),
	})
	if err != nil {
		entries.StopAllGoroutines()
		return nil, fmt.Errorf("memory cache tags: %w", err)
	}
	return &Cache{entries: entries, tags: tags, defaultTTL: cfg.DefaultTTL}, nil
}

// weigh approximates the memory an entry holds.
func weigh(key string, e *entry) uint32 {
	n := uint64(entryOverhead) + uint64(len(key)) + uint64(len(e.value)) + 8*uint64(len(e.gens))
	for _, t := range e.tags {
		n += uint64(len(t)) + 16
	}
	if n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

// Get implements cache.Cache. It never returns an error.
func (c *Cache) Get(_ context.Context, key string) ([]byte, bool, error) {
	e, ok := c.entries.GetIfPresent(key)
	if !ok {
		c.misses.Add(1)
		return nil, false, nil
	}
	for i, t := range e.tags {
		if g, _ := c.tags.GetIfPresent(t); g != e.gens[i] {
			// Drop this stale entry, unless it was replaced meanwhile.
			c.entries.ComputeIfPresent(key, func(old *entry) (*entry, otter.ComputeOp) {
				if old == e {
					return nil, otter.InvalidateOp
				}
				return old, otter.CancelOp
			})
			c.misses.Add(1)
			return nil, false, nil
		}
	}
	c.hits.Add(1)
	return e.value, true, nil
}

// Set implements cache.Cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration, tags ...string) error {
	s, err := c.Stamp(ctx, tags...)
	if err != nil {
		return err
	}
	return c.SetStamped(ctx, key, value, ttl, s)
}

// Stamp implements cache.Cache. It never returns an error.
func (c *Cache) Stamp(_ context.Context, tags ...string) (cache.Stamp, error) {
	tags = cache.Dedup(tags)
	gens := make([]uint64, len(tags))
	for i, t := range tags {
		gens[i], _ = c.tags.ComputeIfAbsent(t, func() (uint64, bool) {
			return c.seq.Add(1), false
		})
	}
	return cache.Stamp{Tags: tags, Gens: gens}, nil
}

// SetStamped implements cache.Cache.
func (c *Cache) SetStamped(_ context.Context, key string, value []byte, ttl time.Duration, s cache.Stamp) error {
	if !s.Valid() {
		return cache.ErrInvalidStamp
	}
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	e := &entry{
		value: append([]byte(nil), value...),
		tags:  append([]string(nil), s.Tags...),
		gens:  append([]uint64(nil), s.Gens...),
		ttl:   ttl,
	}
	if e.value == nil {
		e.value = []byte{}
	}
	c.entries.Set(key, e)
	return nil
}

// Delete implements cache.Cache. It never returns an error.
func (c *Cache) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		c.entries.Invalidate(k)
	}
	return nil
}

// Invalidate implements cache.Cache. It never returns an error. A tag
// without a generation has no live entries, so it is left absent rather
// than given one: writes to records nobody cached cost no memory.
func (c *Cache) Invalidate(_ context.Context, tags ...string) error {
	for _, t := range tags {
		c.tags.ComputeIfPresent(t, func(uint64) (uint64, otter.ComputeOp) {
			return c.seq.Add(1), otter.WriteOp
		})
	}
	return nil
}

// Ping implements cache.Cache; an in-process cache is always ready.
func (c *Cache) Ping(context.Context) error { return nil }

// Close drops every entry and stops the cache's goroutines. The Cache must
// not be used afterwards.
func (c *Cache) Close() error {
	c.entries.InvalidateAll()
	c.tags.InvalidateAll()
	c.entries.StopAllGoroutines()
	c.tags.StopAllGoroutines()
	return nil
}

// Stats returns the cache's counters. Errors is always zero.
func (c *Cache) Stats() cache.Stats {
	return cache.Stats{Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// Len returns the approximate number of entries, expired ones included
// until they are cleaned up.
func (c *Cache) Len() int { return c.entries.EstimatedSize() }
