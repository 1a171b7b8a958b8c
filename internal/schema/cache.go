package schema

import (
	"fmt"
	"slices"
	"time"
)

// CachePolicy says how the records service caches a collection's records.
type CachePolicy string

const (
	// CacheNone reads every record from the database (the default).
	CacheNone CachePolicy = "none"
	// CacheAside keeps views and list pages in the cache: a miss loads from
	// the database, and every change invalidates what it can affect.
	CacheAside CachePolicy = "cache-aside"
	// CacheWriteThrough is cache-aside, and a change also puts the
	// record's new state in the cache, so the next view is a hit.
	CacheWriteThrough CachePolicy = "write-through"
	// CacheWriteBack is write-through, and the counter fields take
	// increments that are summed in memory and written to the database
	// in batches; see records.Service.Increment.
	CacheWriteBack CachePolicy = "write-back"
)

// Cache is a collection's cache setting, as in
//
//	"cache": {"policy": "write-back", "ttl": "30s", "counters": ["views"],
//	          "http": {"max_age": "60s", "stale_while_revalidate": "30s"}}
//
// Durations are Go duration strings ("30s", "5m").
type Cache struct {
	// Policy is none (or ""), cache-aside, write-through or write-back.
	Policy CachePolicy `json:"policy,omitempty"`
	// TTL bounds how long an entry lives in the cache ("": the cache's
	// default). Invalidation makes entries unreachable before that; the
	// TTL bounds staleness only if an invalidation is lost (the cache was
	// unreachable when a change committed).
	TTL string `json:"ttl,omitempty"`
	// Counters are the number fields that take increments, with the
	// write-back policy only.
	Counters []string `json:"counters,omitempty"`
	// HTTP lets browsers and shared caches (CDNs) keep the answers to
	// reads that anyone may make.
	HTTP *HTTPCache `json:"http,omitempty"`
}

// HTTPCache sets the Cache-Control of public reads.
type HTTPCache struct {
	// MaxAge is how long a response is fresh ("60s").
	MaxAge string `json:"max_age,omitempty"`
	// StaleWhileRevalidate is how long after that a cache may serve it
	// while it fetches a fresh one in the background.
	StaleWhileRevalidate string `json:"stale_while_revalidate,omitempty"`
}

// Limits of the cache settings.
const (
	MaxCacheTTL    = 24 * time.Hour
	MaxHTTPMaxAge  = 365 * 24 * time.Hour
	maxCounterList = 64
)

// CachePolicy returns the collection's cache policy, CacheNone when unset.
func (c *Collection) CachePolicy() CachePolicy {
	if c.Cache == nil || c.Cache.Policy == "" {
		return CacheNone
	}
	return c.Cache.Policy
}

// CacheTTL returns the time to live of the collection's cache entries; 0
// means the cache's default.
func (c *Collection) CacheTTL() time.Duration {
	if c.Cache == nil {
		return 0
	}
	d, _ := time.ParseDuration(c.Cache.TTL)
	return d
}

// IsCounter reports whether name is a counter field of a write-back
// collection.
func (c *Collection) IsCounter(name string) bool {
	return c.CachePolicy() == CacheWriteBack && slices.Contains(c.Cache.Counters, name)
}

// HTTPCacheAges returns the max-age and stale-while-revalidate of public
// reads; ok is false when HTTP caching is off.
func (c *Collection) HTTPCacheAges() (maxAge, swr time.Duration, ok bool) {
	if c.Cache == nil || c.Cache.HTTP == nil {
		return 0, 0, false
	}
	maxAge, _ = time.ParseDuration(c.Cache.HTTP.MaxAge)
	swr, _ = time.ParseDuration(c.Cache.HTTP.StaleWhileRevalidate)
	return maxAge, swr, maxAge > 0
}

// validateCache checks the cache setting of c.
func validateCache(ve *ValidationError, c *Collection) {
	s := c.Cache
	if s == nil {
		return
	}
	switch s.Policy {
	case "", CacheNone, CacheAside, CacheWriteThrough, CacheWriteBack:
	default:
		ve.add("cache.policy", "invalid_value", "cache policy %q is not one of none, cache-aside, write-through, write-back", s.Policy)
	}
	policy := c.CachePolicy()
	if c.Type == Auth && policy != CacheNone {
		ve.add("cache.policy", "invalid_value", "auth collections are not cached: sign-in, verification and password changes write their records directly")
	}
	duration := func(field, v string, max time.Duration) {
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			ve.add(field, "invalid_duration", "%q is not a duration such as 30s, 5m or 1h", v)
		case d <= 0:
			ve.add(field, "invalid_value", "%s must be greater than 0", v)
		case d > max:
			ve.add(field, "invalid_value", "%s is longer than the maximum of %s", v, max)
		case d%time.Second != 0:
			ve.add(field, "invalid_value", "%s is not a whole number of seconds", v)
		}
	}
	duration("cache.ttl", s.TTL, MaxCacheTTL)
	if s.TTL != "" && policy == CacheNone {
		ve.add("cache.ttl", "invalid_value", "ttl needs a cache policy other than none")
	}
	if len(s.Counters) > 0 && policy != CacheWriteBack {
		ve.add("cache.counters", "invalid_value", "counters need the write-back policy")
	}
	if policy == CacheWriteBack {
		if len(s.Counters) == 0 {
			ve.add("cache.counters", "required", "the write-back policy needs at least one counter field")
		}
		if len(s.Counters) > maxCounterList {
			ve.add("cache.counters", "invalid_value", "at most %d counters", maxCounterList)
		}
	}
	for i, name := range s.Counters {
		path := fmt.Sprintf("cache.counters[%d]", i)
		f := c.Field(name)
		switch {
		case f == nil:
			ve.add(path, "unknown_field", "counter %q is not a field of the collection", name)
		case f.Type != Number:
			ve.add(path, "invalid_value", "counter %s is a %s field; counters are number fields", name, f.Type)
		case f.Unique:
			ve.add(path, "invalid_value", "counter %s is unique; a counter cannot be", name)
		}
		if slices.Index(s.Counters, name) != i {
			ve.add(path, "duplicate", "counter %q is listed twice", name)
		}
	}
	if h := s.HTTP; h != nil {
		duration("cache.http.max_age", h.MaxAge, MaxHTTPMaxAge)
		duration("cache.http.stale_while_revalidate", h.StaleWhileRevalidate, MaxHTTPMaxAge)
		if h.MaxAge == "" && h.StaleWhileRevalidate != "" {
			ve.add("cache.http.max_age", "required", "stale_while_revalidate needs max_age")
		}
	}
}
