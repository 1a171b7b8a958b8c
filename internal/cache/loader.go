package cache

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	// Cache is where loaded values are kept.
	Cache Cache
	// OnError, if set, is called with each cache error the Loader
	// tolerates (it serves from the source instead). It must be safe for
	// concurrent use; it is meant for logging.
	OnError func(error)
}

// Loader reads through a cache: a value missing from the cache is loaded
// from its source once per node however many requests want it at the same
// time, and stored under the tag generations read before the load began,
// so an invalidation racing with the load is never undone by it.
type Loader struct {
	cache   Cache
	onError func(error)
	group   singleflight.Group
	errors  atomic.Uint64
	loads   atomic.Uint64
}

// NewLoader returns a Loader over cfg.Cache.
func NewLoader(cfg LoaderConfig) *Loader {
	return &Loader{cache: cfg.Cache, onError: cfg.OnError}
}

// GetOrLoad returns the value cached under key, or calls load, caches its
// result for ttl under tags and returns it. Concurrent calls for the same
// key on this Loader share one call of load, unless an invalidation of
// one of tags separates them: a call that starts after an invalidation
// completed never receives a value loaded before it.
//
// Cache errors are treated as misses and counted (see Errors); errors from
// load are returned as they are and nothing is cached. load runs with a
// context that carries ctx's values and deadline but not its
// cancellation, because other callers may be waiting for the same result;
// a caller whose ctx ends stops waiting and gets ctx's error.
//
// The returned slice is shared with other callers and the cache: it must
// not be modified.
func (l *Loader) GetOrLoad(ctx context.Context, key string, ttl time.Duration, tags []string,
	load func(ctx context.Context) ([]byte, error),
) ([]byte, error) {
	v, ok, err := l.cache.Get(ctx, key)
	if err != nil {
		l.failed(fmt.Errorf("cache get %q: %w", key, err))
	} else if ok {
		return v, nil
	}

	stamp, err := l.cache.Stamp(ctx, tags...)
	stamped := err == nil
	if err != nil {
		l.failed(fmt.Errorf("cache stamp %q: %w", key, err))
	}

	ch := l.group.DoChan(flightKey(key, stamp, stamped), func() (any, error) {
		lctx, cancel := detach(ctx)
		defer cancel()
		// A load that finished between this caller's Get and now has
		// left its value in the cache: look again before loading.
		if v, ok, err := l.cache.Get(lctx, key); err == nil && ok {
			return v, nil
		}
		l.loads.Add(1)
		v, err := load(lctx)
		if err != nil {
			return nil, err
		}
		if stamped {
			if err := l.cache.SetStamped(lctx, key, v, ttl, stamp); err != nil {
				l.failed(fmt.Errorf("cache set %q: %w", key, err))
			}
		}
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Errors returns how many cache errors the Loader has tolerated.
func (l *Loader) Errors() uint64 { return l.errors.Load() }

// Loads returns how many times the Loader has called a load function.
func (l *Loader) Loads() uint64 { return l.loads.Load() }

func (l *Loader) failed(err error) {
	l.errors.Add(1)
	if l.onError != nil {
		l.onError(err)
	}
}

// flightKey names one load: the key and the generations it will be stored
// under, so that callers separated by an invalidation do not share a load.
func flightKey(key string, s Stamp, stamped bool) string {
	if !stamped {
		return key + "\x00-"
	}
	b := make([]byte, 0, len(key)+1+8*len(s.Gens))
	b = append(b, key...)
	b = append(b, 0)
	for _, g := range s.Gens {
		b = binary.BigEndian.AppendUint64(b, g)
	}
	return string(b)
}

// detach returns a context with ctx's values and deadline that is not
// cancelled with ctx.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	d := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(d, deadline)
	}
	return d, func() {}
}
