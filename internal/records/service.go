// Package records is the records service: the one place where the rules of
// collection and record operations live. REST (and later GraphQL) are thin
// translations over it.
package records

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Options configures a Service.
type Options struct {
	DB *store.DB
	// Secret keys the MAC of list cursors.
	Secret []byte
	// MigrationsDir, when set, receives a migration file for every schema
	// change made through the service.
	MigrationsDir  string
	IdempotencyTTL time.Duration
	// Events, when set, writes an outbox event in the transaction of
	// every record change.
	Events *outbox.Writer
	// Tracer, when set, traces cache reads inside recorded spans.
	Tracer trace.Tracer
	Logger *slog.Logger
	// Now returns the current time; tests set it.
	Now func() time.Time
	// Cache, when set, caches the records of collections whose cache
	// policy asks for it (see cache.go); nil reads everything from the
	// database. The Service does not close it.
	Cache cache.Cache
	// Metrics receives the cache's metrics; nil exports none.
	Metrics prometheus.Registerer
	// FlushInterval is how often write-back increments are written to
	// the database; DefaultFlushInterval when zero.
	FlushInterval time.Duration
}

// Service runs collection and record operations.
type Service struct {
	db      *store.DB
	log     *slog.Logger
	now     func() time.Time
	secret  []byte
	migDir  string
	idemTTL time.Duration
	events  *outbox.Writer
	tracer  trace.Tracer

	// cols maps collection names to definitions. A published map and its
	// collections are never modified; schema changes publish a new map.
	cols     atomic.Pointer[map[string]*schema.Collection]
	schemaMu sync.Mutex // serializes schema changes

	rc         recordCache
	ctr        counters
	flushEvery time.Duration
}

// New loads the collections and returns a Service.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = 24 * time.Hour
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	mac := hmac.New(sha256.New, o.Secret)
	mac.Write([]byte("strata cursor key"))
	s := &Service{
		db: o.DB, log: o.Logger, now: o.Now, secret: mac.Sum(nil),
		migDir: o.MigrationsDir, idemTTL: o.IdempotencyTTL, events: o.Events, tracer: o.Tracer,
		flushEvery: o.FlushInterval,
	}
	s.initCache(o)
	if err := audit.Ensure(ctx, s.db); err != nil {
		return nil, fmt.Errorf("create the audit log: %w", err)
	}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// reload reads every collection definition from the database.
func (s *Service) reload(ctx context.Context) error {
	list, err := store.Collections(ctx, s.db.Reader())
	if err != nil {
		return err
	}
	m := make(map[string]*schema.Collection, len(list))
	for _, c := range list {
		m[c.Name] = c
	}
	lookup := func(name string) *schema.Collection { return m[name] }
	for _, c := range list {
		if err := c.Validate(lookup); err != nil {
			return fmt.Errorf("stored collection %s is invalid: %w", c.Name, err)
		}
	}
	s.cols.Store(&m)
	return nil
}

func (s *Service) registry() map[string]*schema.Collection { return *s.cols.Load() }

// lookup resolves a collection name in the current registry.
func (s *Service) lookup(name string) *schema.Collection { return s.registry()[name] }

// Collections returns every collection, sorted by name.
func (s *Service) Collections() []*schema.Collection {
	reg := s.registry()
	out := slices.Collect(maps.Values(reg))
	slices.SortFunc(out, func(a, b *schema.Collection) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Collection returns the named collection. A name this node does not know
// is looked up in the database once, since another node may have created it.
func (s *Service) Collection(ctx context.Context, name string) (*schema.Collection, error) {
	if c := s.lookup(name); c != nil {
		return c, nil
	}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	if c := s.lookup(name); c != nil {
		return c, nil
	}
	return nil, apperr.New(apperr.NotFound, "collection %q does not exist", name)
}

// Ready reports whether the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.db.Ping(ctx) }

// NewID returns a new record id: a UUIDv7, so ids sort by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// storeErr turns store errors into client errors.
func storeErr(err error, c *schema.Collection) error {
	var ue *store.UniqueError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ue):
		e := &apperr.Error{Kind: apperr.Conflict, Msg: "a record with this value already exists", Err: err}
		if ue.Field != "" && ue.Field != schema.FieldID {
			e.Fields = []schema.FieldError{{Field: ue.Field, Code: "unique", Message: fmt.Sprintf("%s must be unique; this value is taken", ue.Field)}}
		} else if ue.Field == schema.FieldID {
			e.Msg = "a record with this id already exists"
		}
		return e
	case errors.Is(err, store.ErrNotFound):
		return &apperr.Error{Kind: apperr.NotFound, Msg: fmt.Sprintf("record not found in %s", c.Name), Err: err}
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return apperr.Wrap(apperr.Unavailable, err, "the request ran out of time")
	}
	return err
}

// clone returns a deep copy of a collection definition.
func clone(c *schema.Collection) *schema.Collection {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a definition always marshals
	}
	out := new(schema.Collection)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
