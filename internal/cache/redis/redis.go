// Package redis is the Redis adapter of cache.Cache, shared by every node
// of a cluster. It needs Redis 7.0 or later (SET with both NX and GET).
//
// Layout, under the configured prefix P:
//
//	P v:<key>   the entry: its tags with their generations, then the value;
//	            expires with the entry's time to live
//	P t:<tag>   the tag's generation, a random 63-bit decimal number;
//	            expires TagTTL after it was created or invalidated
//
// Every command touches one key, so the adapter works on Redis Cluster
// through a redis.ClusterClient as well as on a single server.
//
// Stamp creates missing generations with SET NX GET, so concurrent nodes
// agree on one; Invalidate overwrites existing ones with fresh random
// numbers (SET XX), and Get compares an entry's recorded generations with
// the current ones before returning it. A generation missing from Redis
// (expired or evicted under maxmemory) reads as zero, which no entry
// records: the loss makes misses, never stale hits. Because the
// generations live in Redis, an Invalidate that has returned is seen by
// every Get that starts after it, on every node.
//
// Operations that cannot reach Redis fail after Config.Timeout at most;
// Stats counts them. Callers treat a failed Get as a miss (see package
// cache).
package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-dev/strata/internal/cache"
)

// Defaults for zero Config fields.
const (
	DefaultPrefix  = "strata:cache:"
	DefaultTimeout = 250 * time.Millisecond
	DefaultTTL     = 5 * time.Minute
	DefaultTagTTL  = 24 * time.Hour
)

// Config configures a Cache.
type Config struct {
	// Client reaches Redis: a *redis.Client, *redis.ClusterClient or
	// *redis.Ring. Required. The Cache does not close it. Its own dial and
	// read timeouts and retries apply within Timeout; keep them short.
	Client goredis.UniversalClient
	// Prefix starts every key the Cache writes.
	Prefix string
	// Timeout bounds each operation, whatever the caller's deadline.
	Timeout time.Duration
	// DefaultTTL is the time to live of entries set with ttl <= 0.
	DefaultTTL time.Duration
	// TagTTL is how long a tag generation lives after it was created or
	// last invalidated. Entries under an expired generation become misses,
	// so it should exceed the longest entry time to live.
	TagTTL time.Duration
}

// Cache is a cache.Cache in Redis. It is safe for concurrent use.
type Cache struct {
	client     goredis.UniversalClient
	prefix     string
	timeout    time.Duration
	defaultTTL time.Duration
	tagTTL     time.Duration

	hits, misses, errors atomic.Uint64
}

var _ cache.Cache = (*Cache)(nil)

// New returns a Cache configured by cfg. It does not contact Redis.
func New(cfg Config) (*Cache, error) {
	if cfg.Client == nil {
		return nil, errors.New("redis cache: no client")
	}
	if cfg.Timeout < 0 || cfg.DefaultTTL < 0 || cfg.TagTTL < 0 {
		return nil, errors.New("redis cache: negative duration in config")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DefaultTTL == 0 {
		cfg.DefaultTTL = DefaultTTL
	}
	if cfg.TagTTL == 0 {
		cfg.TagTTL = DefaultTagTTL
	}
	return &Cache{
		client:     cfg.Client,
		prefix:     cfg.Prefix,
		timeout:    cfg.Timeout,
		defaultTTL: cfg.DefaultTTL,
		tagTTL:     cfg.TagTTL,
	}, nil
}

func (c *Cache) valueKey(key string) string { return c.prefix + "v:" + key }
func (c *Cache) tagKey(tag string) string   { return c.prefix + "t:" + tag }

// fail counts err and returns it wrapped with op.
func (c *Cache) fail(op string, err error) error {
	c.errors.Add(1)
	return fmt.Errorf("redis cache %s: %w", op, err)
}

// Get implements cache.Cache. It takes one round trip for an entry without
// tags, two for one with tags.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	raw, err := c.client.Get(ctx, c.valueKey(key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		c.misses.Add(1)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, c.fail("get", err)
	}
	tags, gens, value, ok := decode(raw)
	if !ok {
		// Not written by this version; a miss, overwritten by the next Set.
		c.misses.Add(1)
		return nil, false, nil
	}
	if len(tags) > 0 {
		current, err := c.generations(ctx, tags)
		if err != nil {
			return nil, false, c.fail("get tags", err)
		}
		for i := range gens {
			if current[i] != gens[i] {
				c.misses.Add(1)
				return nil, false, nil
			}
		}
	}
	c.hits.Add(1)
	return value, true, nil
}

// generations reads the current generations of tags; a missing one is 0.
func (c *Cache) generations(ctx context.Context, tags []string) ([]uint64, error) {
	cmds := make([]*goredis.StringCmd, len(tags))
	_, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, t := range tags {
			cmds[i] = p.Get(ctx, c.tagKey(t))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	gens := make([]uint64, len(tags))
	for i, cmd := range cmds {
		s, err := cmd.Result()
		if errors.Is(err, goredis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// A value that does not parse matches no entry, as a missing one.
		gens[i], _ = strconv.ParseUint(s, 10, 64)
	}
	return gens, nil
}

// Set implements cache.Cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration, tags ...string) error {
	s, err := c.Stamp(ctx, tags...)
	if err != nil {
		return err
	}
	return c.SetStamped(ctx, key, value, ttl, s)
}

// Stamp implements cache.Cache. It takes one round trip when there are
// tags, none otherwise.
func (c *Cache) Stamp(ctx context.Context, tags ...string) (cache.Stamp, error) {
	tags = cache.Dedup(tags)
	if len(tags) == 0 {
		return cache.Stamp{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	fresh := make([]uint64, len(tags))
	cmds := make([]*goredis.Cmd, len(tags))
	ttl := c.tagTTL.Milliseconds()
	_, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, t := range tags {
			fresh[i] = newGeneration()
			cmds[i] = p.Do(ctx, "set", c.tagKey(t), fresh[i], "nx", "get", "px", ttl)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return cache.Stamp{}, c.fail("stamp", err)
	}
	gens := make([]uint64, len(tags))
	for i, cmd := range cmds {
		s, err := cmd.Text()
		switch {
		case errors.Is(err, goredis.Nil):
			gens[i] = fresh[i] // the key was absent and now holds ours
		case err != nil:
			return cache.Stamp{}, c.fail("stamp", err)
		default:
			g, perr := strconv.ParseUint(s, 10, 64)
			if perr != nil || g == 0 {
				return cache.Stamp{}, c.fail("stamp", fmt.Errorf("tag %q holds %q, not a generation", tags[i], s))
			}
			gens[i] = g
		}
	}
	return cache.Stamp{Tags: tags, Gens: gens}, nil
}

// SetStamped implements cache.Cache. It takes one round trip.
func (c *Cache) SetStamped(ctx context.Context, key string, value []byte, ttl time.Duration, s cache.Stamp) error {
	if !s.Valid() {
		return cache.ErrInvalidStamp
	}
	if ttl <= 0 {
		ttl = c.defaultTTL
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.client.Set(ctx, c.valueKey(key), encode(s, value), ttl).Err(); err != nil {
		return c.fail("set", err)
	}
	return nil
}

// Delete implements cache.Cache. It takes one round trip.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, c.valueKey(k))
		}
		return nil
	})
	if err != nil {
		return c.fail("delete", err)
	}
	return nil
}

// Invalidate implements cache.Cache. It takes one round trip. A tag with
// no generation has no live entries and is left without one.
func (c *Cache) Invalidate(ctx context.Context, tags ...string) error {
	tags = cache.Dedup(tags)
	if len(tags) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ttl := c.tagTTL.Milliseconds()
	cmds := make([]*goredis.Cmd, len(tags))
	_, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, t := range tags {
			cmds[i] = p.Do(ctx, "set", c.tagKey(t), newGeneration(), "xx", "px", ttl)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return c.fail("invalidate", err)
	}
	for _, cmd := range cmds {
		// Nil answers a tag that had no generation.
		if err := cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return c.fail("invalidate", err)
		}
	}
	return nil
}

// Ping implements cache.Cache.
func (c *Cache) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.client.Ping(ctx).Err(); err != nil {
		return c.fail("ping", err)
	}
	return nil
}

// Close implements cache.Cache. The client is the caller's to close.
func (c *Cache) Close() error { return nil }

// Stats returns the cache's counters.
func (c *Cache) Stats() cache.Stats {
	return cache.Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Errors: c.errors.Load()}
}

// Errors returns how many operations have failed.
func (c *Cache) Errors() uint64 { return c.errors.Load() }

// newGeneration returns a random generation in [1, 2^63).
func newGeneration() uint64 { return rand.Uint64N(1<<63-1) + 1 }

// entryVersion starts every encoded entry.
const entryVersion = 1

// encode lays out an entry: the version byte, the number of tags, each
// tag (length, bytes, 8-byte generation), then the value.
func encode(s cache.Stamp, value []byte) []byte {
	n := 1 + binary.MaxVarintLen64 + len(value)
	for _, t := range s.Tags {
		n += binary.MaxVarintLen64 + len(t) + 8
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(len(s.Tags)))
	for i, t := range s.Tags {
		b = binary.AppendUvarint(b, uint64(len(t)))
		b = append(b, t...)
		b = binary.BigEndian.AppendUint64(b, s.Gens[i])
	}
	return append(b, value...)
}

// decode reverses encode; ok is false for bytes encode did not write.
func decode(b []byte) (tags []string, gens []uint64, value []byte, ok bool) {
	if len(b) == 0 || b[0] != entryVersion {
		return nil, nil, nil, false
	}
	b = b[1:]
	count, k := uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, nil, nil, false
	}
	b = b[k:]
	tags = make([]string, count)
	gens = make([]uint64, count)
	for i := range tags {
		l, k := uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || uint64(len(b)-k)-l < 8 {
			return nil, nil, nil, false
		}
		b = b[k:]
		tags[i] = string(b[:l])
		gens[i] = binary.BigEndian.Uint64(b[l:])
		b = b[l+8:]
	}
	return tags, gens, b, true
}

// uvarint is binary.Uvarint accepting only the shortest encoding, so that
// one entry has one encoding.
func uvarint(b []byte) (uint64, int) {
	v, k := binary.Uvarint(b)
	if k > 1 && b[k-1] == 0 {
		return 0, 0
	}
	return v, k
}
