package records

// Caching of records, by each collection's cache policy (schema.Cache).
//
// # What is cached
//
// A view (Get) caches the record itself, under a key made of the
// collection, its definition's version and the id, whoever asks: the view
// rule is then checked on every read, in memory, against the cached
// record (query.Env.Eval, the evaluator realtime uses, which agrees with
// the SQL the rule compiles to), and the related records a rule reaches
// through are read from the database. So a cached view is never shown to
// a caller the rule refuses, and one entry serves every caller.
//
// A list caches the page: its records, next cursor and total. Its key is
// the collection, its version, the query (filter, sort, limit, cursor,
// total) and what the list rule depends on: nothing when the rule lets
// the caller see every record (superusers, and "" rules), else the
// caller's whole @request context (its auth record's values, which hold
// its collection and id, the query parameters and the method), so that
// one user's page is never served to another. Lists whose rule reads @now
// are not cached. fields and expand are not part of the key: they shape
// the rendering of the same page, and expanded relations are read from
// the database (by the related collection's view rule) on each request.
//
// # Invalidation
//
// Entries carry tags: rec:<collection>/<id> on views, coll:<collection>
// on lists, and a list also carries coll:<T> for every collection T its
// collection reaches through relation fields, since filters, sorts and
// rules can follow relations. A committed create, update or delete of
// record R in C invalidates rec:C/R and coll:C, on the writing node right
// after the commit (before the write returns). With the Redis cache the
// generations the tags compare against live in Redis, so that
// invalidation is seen by the next read on every node; with the
// in-process cache there is only this node's cache. A schema change
// changes the collection's version, which is part of every key.
//
// A failed invalidation (the cache is unreachable) leaves entries that
// can be stale until their time to live, the collection's cache.ttl; it is
// counted in strata_cache_errors_total and logged.
//
// # Failures
//
// The cache is an optimisation: a read whose cache operation fails is
// answered from the database, and for a second after any failure reads
// skip the cache altogether, so that an unreachable Redis costs one
// timeout a second rather than one per read. Then the cache is tried
// again: recovery needs nothing but Redis answering.
//
// # Write-through and write-back
//
// With write-through (and write-back), a committed create or update also
// refills the view entry: after the invalidation the record is read back
// by id and cached, stamped before that read, so a writer that commits
// later can never be overtaken by an older value. Write-back adds
// counters: see Increment.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"hash"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// cacheMetrics are the metrics of the records cache.
type cacheMetrics struct {
	requests *prometheus.CounterVec // collection, result: hit or miss
	errors   prometheus.Counter
}

func newCacheMetrics(reg prometheus.Registerer) *cacheMetrics {
	m := &cacheMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_cache_requests_total",
			Help: "Reads of cached collections, by collection and result: hit (served from the cache) or miss (read from the database).",
		}, []string{"collection", "result"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_cache_errors_total",
			Help: "Cache operations that failed; reads were served from the database instead.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.errors)
	}
	return m
}

// recordCache is the part of a Service that caches.
type recordCache struct {
	cache   cache.Cache // nil: nothing is cached
	loader  *cache.Loader
	metrics *cacheMetrics
	log     *slog.Logger
	lastLog atomic.Int64
	plan    atomic.Pointer[cachePlan]
	// downUntil (Unix nanoseconds) is when reads try the cache again
	// after an error: until then they go straight to the database, so an
	// unreachable cache costs one timeout a second, not one per read.
	downUntil atomic.Int64
	// decoded keeps what cached views decoded.
	decoded decodedMemo
}

// bypass is how long reads skip the cache after it failed.
const bypass = time.Second

func (s *Service) initCache(o Options) {
	s.rc.metrics = newCacheMetrics(o.Metrics)
	s.rc.log = o.Logger
	if o.Cache == nil {
		return
	}
	s.rc.cache = o.Cache
	s.rc.loader = cache.NewLoader(cache.LoaderConfig{Cache: o.Cache, OnError: s.rc.failed})
}

// failed counts a cache error and logs it, at most once every 10 seconds.
func (rc *recordCache) failed(err error) {
	rc.metrics.errors.Inc()
	rc.downUntil.Store(time.Now().Add(bypass).UnixNano())
	now, last := time.Now().Unix(), rc.lastLog.Load()
	if now-last >= 10 && rc.lastLog.CompareAndSwap(last, now) {
		rc.log.Warn("cache: operation failed; reads go to the database until it answers again", "err", err)
	}
}

func (rc *recordCache) count(c *schema.Collection, hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	rc.metrics.requests.WithLabelValues(c.Name, result).Inc()
}

// cachePlan is derived from one registry of collections.
type cachePlan struct {
	reg *map[string]*schema.Collection
	// listTags are the tags of each collection's list entries.
	listTags map[string][]string
	// watched holds the collections whose changes invalidate entries:
	// those with a cache policy and those one of them reaches.
	watched map[string]bool
}

func (s *Service) cachePlan() *cachePlan {
	reg := s.cols.Load()
	if p := s.rc.plan.Load(); p != nil && p.reg == reg {
		return p
	}
	p := &cachePlan{reg: reg, listTags: map[string][]string{}, watched: map[string]bool{}}
	for name, c := range *reg {
		if c.CachePolicy() == schema.CacheNone {
			continue
		}
		reach := reachable(*reg, name)
		tags := []string{tagCollection(name)}
		p.watched[name] = true
		for _, t := range reach {
			p.watched[t] = true
			if t != name {
				tags = append(tags, tagCollection(t))
			}
		}
		p.listTags[name] = tags
	}
	s.rc.plan.Store(p)
	return p
}

// reachable lists the collections reached from name through relation
// fields, transitively, in sorted order.
func reachable(reg map[string]*schema.Collection, name string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		c := reg[n]
		if c == nil {
			return
		}
		for _, f := range c.Fields {
			if f.Type == schema.Relation && !seen[f.Collection] {
				seen[f.Collection] = true
				walk(f.Collection)
			}
		}
	}
	walk(name)
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func tagRecord(collection, id string) string { return "rec:" + collection + "/" + id }
func tagCollection(collection string) string { return "coll:" + collection }

// version names a collection's definition: it changes with every schema
// change (UpdateCollection keeps Updated increasing) and when a collection
// is dropped and made again (a new ID).
func version(c *schema.Collection) string {
	return c.ID + "." + strconv.FormatInt(c.Updated.UnixMilli(), 36)
}

func viewKey(c *schema.Collection, id string) string {
	return "view:" + c.Name + ":" + version(c) + ":" + id
}

// cached reports whether reads of c go through the cache: c has a cache
// policy and the cache has not failed in the last second.
func (s *Service) cached(c *schema.Collection) bool {
	return s.rc.cache != nil && c.CachePolicy() != schema.CacheNone && time.Now().UnixNano() >= s.rc.downUntil.Load()
}

// cachedRecord returns the record with the id, from the cache or, on a
// miss, from the database without any rule. c must be cached.
func (s *Service) cachedRecord(ctx context.Context, c *schema.Collection, id string) (*schema.Record, []byte, error) {
	loaded := false
	ctx, end := s.cacheSpan(ctx, "cache view", c)
	defer func() { end(!loaded) }()
	key := viewKey(c, id)
	b, err := s.rc.loader.GetOrLoad(ctx, key, c.CacheTTL(), []string{tagRecord(c.Name, id)},
		func(ctx context.Context) ([]byte, error) {
			loaded = true
			// A fill after an invalidation must not cache a replica's
			// older copy.
			r, err := store.GetRecordIf(store.ReadPrimary(ctx), s.db.Reader(), c, id, "", &sqldb.Args{Dialect: s.db.Dialect()}, false)
			if err != nil {
				return nil, err
			}
			return r.AppendInternalJSON(nil)
		})
	if err != nil {
		return nil, nil, storeErr(err, c)
	}
	s.rc.count(c, !loaded)
	return s.rc.decoded.decode(c, key, b)
}

// errUncached tells a caller to answer from the database instead.
var errUncached = errors.New("records: not answered from the cache")

// getCached is Get from the cache: the record, if the view rule lets the
// caller see it. It returns errUncached when the rule cannot be checked
// in memory; the database then decides.
func (s *Service) getCached(ctx context.Context, c *schema.Collection, caller *Caller, id string) (*schema.Record, []byte, error) {
	rule, err := ruleFor(c, caller, "view")
	if err != nil {
		return nil, nil, err
	}
	r, pub, err := s.cachedRecord(ctx, c, id)
	if err != nil || rule == "" {
		return r, pub, err
	}
	e, err := s.parsedRule(rule)
	if err != nil {
		return nil, nil, errUncached
	}
	env := &query.Env{Dialect: s.db.Dialect(), Collection: c, Alias: store.Alias, Lookup: s.lookup, Request: caller.Request}
	ok, err := env.Eval(ctx, e, r, s.fetch)
	if err != nil {
		return nil, nil, errUncached
	}
	if !ok {
		return nil, nil, storeErr(store.ErrNotFound, c)
	}
	return r, pub, nil
}

// listKey returns the cache key of a list for caller, whose list rule is
// rule; ok is false when the list is not to be cached.
func (s *Service) listKey(c *schema.Collection, caller *Caller, rule string, p ListParams) (key string, ok bool) {
	if !s.cached(c) || strings.Contains(rule, "@now") {
		return "", false
	}
	h := sha256.New()
	field := func(h hash.Hash, v string) {
		h.Write([]byte(strconv.Itoa(len(v))))
		h.Write([]byte{':'})
		h.Write([]byte(v))
	}
	field(h, p.Filter)
	field(h, p.Sort)
	field(h, strconv.Itoa(p.Limit))
	field(h, p.Cursor)
	field(h, strconv.FormatBool(p.Total))
	if rule != "" {
		// The rule filters rows by the caller: the page is the caller's.
		field(h, "caller")
		if req := caller.Request; req != nil {
			auth, err := json.Marshal(req.Auth)
			if err != nil {
				return "", false
			}
			q, err := json.Marshal(req.Query)
			if err != nil {
				return "", false
			}
			field(h, string(auth))
			field(h, string(q))
			field(h, req.Method)
		}
	}
	return "list:" + c.Name + ":" + version(c) + ":" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]), true
}

// cachedPage returns the page under key, or runs load and caches it.
func (s *Service) cachedPage(ctx context.Context, c *schema.Collection, key string, load func(context.Context) (*Page, error)) (*Page, error) {
	loaded := false
	ctx, end := s.cacheSpan(ctx, "cache list", c)
	defer func() { end(!loaded) }()
	b, err := s.rc.loader.GetOrLoad(ctx, key, c.CacheTTL(), s.cachePlan().listTags[c.Name],
		func(ctx context.Context) ([]byte, error) {
			loaded = true
			p, err := load(ctx)
			if err != nil {
				return nil, err
			}
			return encodePage(p)
		})
	if err != nil {
		return nil, err
	}
	s.rc.count(c, !loaded)
	return decodePage(c, b)
}

// pageVersion starts every encoded page.
const pageVersion = 1

// encodePage lays out a page: the version byte, the next cursor (length,
// bytes), the total plus one (0: none), the number of records, then each
// record's internal JSON (length, bytes). Lengths are uvarints; lengths
// rather than one JSON document spare a read the scan of every byte that
// JSON would need before the records are parsed.
func encodePage(p *Page) ([]byte, error) {
	b := make([]byte, 0, 64+256*len(p.Items))
	b = append(b, pageVersion)
	b = binary.AppendUvarint(b, uint64(len(p.NextCursor)))
	b = append(b, p.NextCursor...)
	var total uint64
	if p.Total != nil {
		total = uint64(*p.Total) + 1
	}
	b = binary.AppendUvarint(b, total)
	b = binary.AppendUvarint(b, uint64(len(p.Items)))
	var rec []byte
	for _, r := range p.Items {
		var err error
		if rec, err = r.AppendInternalJSON(rec[:0]); err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
	}
	return b, nil
}

func decodePage(c *schema.Collection, b []byte) (*Page, error) {
	bad := fmt.Errorf("cached page of %s: not written by this version", c.Name)
	if len(b) == 0 || b[0] != pageVersion {
		return nil, bad
	}
	b = b[1:]
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	cur, ok := next()
	if !ok {
		return nil, bad
	}
	p := &Page{NextCursor: string(cur)}
	total, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, bad
	}
	b = b[k:]
	if total > 0 {
		t := int64(total - 1)
		p.Total = &t
	}
	count, k := binary.Uvarint(b)
	if k <= 0 || count > uint64(len(b)) {
		return nil, bad
	}
	b = b[k:]
	p.Items = make([]*schema.Record, count)
	for i := range p.Items {
		item, ok := next()
		if !ok {
			return nil, bad
		}
		r, err := c.ParseInternalJSON(item)
		if err != nil {
			return nil, fmt.Errorf("cached page of %s: %w", c.Name, err)
		}
		p.Items[i] = r
	}
	return p, nil
}

// changed invalidates what a committed change of the record with the id
// can affect, and with write-through refills its view entry. It runs after
// the commit, before the write returns; errors are counted and logged.
func (s *Service) changed(ctx context.Context, c *schema.Collection, id string, deleted bool) {
	if s.rc.cache == nil || !s.cachePlan().watched[c.Name] {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.rc.cache.Invalidate(ctx, tagRecord(c.Name, id), tagCollection(c.Name)); err != nil {
		s.rc.failed(fmt.Errorf("invalidate %s/%s: %w", c.Name, id, err))
		return
	}
	if deleted {
		return
	}
	switch c.CachePolicy() {
	case schema.CacheWriteThrough, schema.CacheWriteBack:
		// Read back rather than cache the value written: a later writer
		// may already have committed, and the load is stamped before it
		// reads, so it can never put an older value over a newer one.
		if _, _, err := s.cachedRecord(ctx, c, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.rc.log.Debug("cache: refill after write", "collection", c.Name, "id", id, "err", err)
		}
	}
}

// cacheSpan starts a span for a cache read inside a traced request; end
// records whether it was a hit. Without tracing, or outside a recorded
// span, it costs nothing.
func (s *Service) cacheSpan(ctx context.Context, name string, c *schema.Collection) (context.Context, func(hit bool)) {
	if s.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(bool) {}
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("strata.collection", c.Name)))
	return ctx, func(hit bool) {
		span.SetAttributes(attribute.Bool("strata.cache.hit", hit))
		span.End()
	}
}
