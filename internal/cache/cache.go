// Package cache defines Strata's cache: byte values under string keys, with
// a time to live, and tags for invalidation. Adapters live beside it:
// cache/memory (in-process, on otter) and cache/redis (shared by every
// node).
//
// # Invalidation by tag
//
// An entry is stored with tags, for example the collection and the ids of
// the records it was built from ("c:posts", "r:posts:42"). Invalidate(tag)
// makes every entry carrying the tag unreachable at once, however many
// there are, without finding them: each tag has a generation, an opaque
// non-zero token; an entry records the generation of each of its tags when
// its value was read from the source (a Stamp), and a Get returns it only
// while every one of those tags still has the recorded generation.
// Invalidate replaces a tag's generation with a fresh token, so entries
// stamped before it stop matching and age out by their time to live. A tag
// whose generation is missing (never stamped, evicted, expired) reads as
// zero, which no entry records, so losing a generation can only turn hits
// into misses, never resurrect a stale entry.
//
// Stamping before the source is read is what makes loading safe: a value
// loaded while an invalidation of one of its tags was in flight is written
// under the old generation and is never returned by a later Get. Loader
// does this for callers.
//
// # Consistency across nodes
//
// With the Redis adapter the generations live in Redis, and every Get
// compares them there: an Invalidate that has returned on one node is seen
// by every Get that starts after it on any node (propagation bound zero;
// no per-node copy is kept in front of Redis). The memory adapter is
// per-process; a cluster uses Redis.
//
// # Errors
//
// A cache is an optimisation. An error from Get means the cache could not
// answer (Redis is unreachable, the deadline passed); callers treat it as
// a miss and read the source, and a failed Set is ignored. Loader follows
// this contract and counts the errors. Adapters bound each operation with
// a short timeout so that an unreachable cache costs little latency.
package cache

import (
	"context"
	"errors"
	"time"
)

// Cache stores byte values under string keys, with a time to live and tags.
//
// Values passed to Set are copied or serialised; the slice returned by Get
// must not be modified. Keys and tags are arbitrary strings.
type Cache interface {
	// Get returns the value stored under key. ok is false when there is no
	// live entry: never set, deleted, expired, or invalidated by a tag. An
	// error means the cache could not answer; treat it as a miss.
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)

	// Set stores value under key for ttl (the adapter's default when ttl
	// is zero or negative), tagged with tags. It stamps the tags when
	// called: use Stamp and SetStamped for a value read from a source
	// that may change while it is read.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration, tags ...string) error

	// Stamp records the current generations of tags, creating those that
	// have none. Take it before reading the source of a value.
	Stamp(ctx context.Context, tags ...string) (Stamp, error)

	// SetStamped stores value under key for ttl, tagged with the tags of
	// s. The entry is never returned if any of those tags was invalidated
	// after s was taken.
	SetStamped(ctx context.Context, key string, value []byte, ttl time.Duration, s Stamp) error

	// Delete removes the entries under keys; missing keys are ignored.
	Delete(ctx context.Context, keys ...string) error

	// Invalidate makes every entry carrying any of tags unreachable. When
	// it returns nil, no Get that starts afterwards returns such an entry.
	Invalidate(ctx context.Context, tags ...string) error

	// Ping reports whether the cache can serve requests, for readiness.
	Ping(ctx context.Context) error

	// Close releases the cache's resources. It does not close clients
	// passed in by the caller.
	Close() error
}

// Stamp holds the generations of a set of tags at one moment. Gens[i] is
// the generation of Tags[i]; generations are never zero.
type Stamp struct {
	Tags []string
	Gens []uint64
}

// Valid reports whether s is well formed: one non-zero generation per tag.
func (s Stamp) Valid() bool {
	if len(s.Tags) != len(s.Gens) {
		return false
	}
	for _, g := range s.Gens {
		if g == 0 {
			return false
		}
	}
	return true
}

// Stats counts a cache's operations since it was created, for metrics.
type Stats struct {
	// Hits and Misses count Get calls that found, or did not find, a live
	// entry. An entry dropped by an invalidation counts as a miss.
	Hits, Misses uint64
	// Errors counts operations of any kind that failed.
	Errors uint64
}

// ErrInvalidStamp is returned by SetStamped for a Stamp that Valid rejects.
var ErrInvalidStamp = errors.New("cache: invalid stamp")

// Dedup returns tags without duplicates, in their first order. Adapters
// use it so that a tag given twice is stamped and checked once.
func Dedup(tags []string) []string {
	if len(tags) < 2 {
		return tags
	}
	seen := make(map[string]struct{}, len(tags))
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if _, ok := seen[t]; ok {
			continue
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}
