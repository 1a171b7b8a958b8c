package jobs

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/ascii"
	"github.com/strata-dev/strata/internal/store"
)

// Config configures a Service. Zero durations and counts take the defaults
// named beside them.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger
	// Metrics receives the service's metrics; nil exports none.
	Metrics prometheus.Registerer
	// Queues maps the queues this node works to their number of workers;
	// nil means {"default": 4}. A node may enqueue into any queue.
	Queues map[string]int
	// Node names this node in jobs' attempted_by; "" means the host name.
	Node string

	MaxAttempts  int           // default attempts per job: 20
	JobTimeout   time.Duration // default timeout per attempt: 5m
	LeaseTTL     time.Duration // how long a taken job stays leased without renewal: 30s
	PollInterval time.Duration // how often idle workers look for jobs enqueued elsewhere: 1s
	ReapInterval time.Duration // how often expired leases are looked for: 5s
	RetryBase    time.Duration // backoff before the second attempt: 1s, doubling
	RetryMax     time.Duration // longest backoff: 1h
	// Retention is how long completed and cancelled jobs are kept: 24h.
	// Dead jobs are kept until deleted or retried.
	Retention time.Duration
	// DepthInterval is how often the queue-depth gauge is sampled: 15s.
	DepthInterval time.Duration
	// Secret keys the MACs of list cursors; nodes that serve one list's
	// pages share it. Nil means a random key: cursors then hold on this
	// node until it restarts.
	Secret []byte
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Queues == nil {
		c.Queues = map[string]int{DefaultQueue: 4}
	}
	if c.Node == "" {
		c.Node, _ = os.Hostname()
	}
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		crand.Read(c.Secret)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 20
	}
	def(&c.JobTimeout, 5*time.Minute)
	def(&c.LeaseTTL, 30*time.Second)
	def(&c.PollInterval, time.Second)
	def(&c.ReapInterval, 5*time.Second)
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, time.Hour)
	def(&c.Retention, 24*time.Hour)
	def(&c.DepthInterval, 15*time.Second)
}

// DefaultQueue is the queue of jobs enqueued without one.
const DefaultQueue = "default"

var nameFirst, nameRest = ascii.NewSet("A-Za-z0-9"), ascii.NewSet("A-Za-z0-9_.:-")

// validName reports whether s may name a queue, a kind or a schedule:
// ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$.
func validName(s string) bool { return ascii.Name(s, nameFirst, nameRest, 1, 128) }

// Service enqueues jobs into the database and, once started, works the
// configured queues.
type Service struct {
	cfg    Config
	db     *store.DB
	log    *slog.Logger
	m      *metrics
	worker string // this Service's name in locked_by: node and a random suffix
	secret []byte // keys list cursors

	mu        sync.Mutex
	handlers  map[string]WorkFunc
	schedules []*schedule
	queues    map[string]*queue
	running   map[int64]*active
	run       *runState // nil unless started
}

type active struct {
	job    *Job
	cancel context.CancelCauseFunc
}

// New returns a service over cfg.DB, creating its tables when missing.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: no database")
	}
	cfg.defaults()
	for q, n := range cfg.Queues {
		if !validName(q) || n <= 0 {
			return nil, fmt.Errorf("jobs: queue %q: need a name of letters, digits, _.:- and at least one worker", q)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := migrate(ctx, cfg.DB); err != nil {
		return nil, err
	}
	var b [4]byte
	crand.Read(b[:])
	s := &Service{
		cfg:      cfg,
		db:       cfg.DB,
		log:      cfg.Logger.With("component", "jobs"),
		m:        newMetrics(cfg.Metrics),
		worker:   cfg.Node + "-" + hex.EncodeToString(b[:]),
		secret:   cfg.Secret,
		handlers: map[string]WorkFunc{},
		queues:   map[string]*queue{},
		running:  map[int64]*active{},
	}
	for name, n := range cfg.Queues {
		s.queues[name] = &queue{name: name, slots: n, wake: make(chan struct{}, 1)}
		// Every state of a configured queue is exported from the start,
		// so that alerts on it (dead letters growing) have a series.
		for _, st := range States {
			if st != StateCompleted && st != StateCancelled {
				s.m.depth.WithLabelValues(name, string(st)).Set(0)
			}
		}
	}
	return s, nil
}

// Register sets the handler of jobs of kind. Every node that enqueues or
// works a kind registers it, before Start; registering a kind twice
// panics, as a programming error.
func (s *Service) Register(kind string, handler WorkFunc) {
	if !validName(kind) {
		panic(fmt.Sprintf("jobs: bad kind %q", kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[kind]; dup {
		panic(fmt.Sprintf("jobs: kind %q registered twice", kind))
	}
	s.handlers[kind] = handler
}

// Kinds returns the registered kinds, sorted.
func (s *Service) Kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.handlers))
}

func (s *Service) handler(kind string) WorkFunc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handlers[kind]
}

// Enqueue adds a job of a registered kind with args encoded as JSON (a
// json.RawMessage is taken as is). With a tx, the job is written in that
// transaction: it exists, and will run, exactly when tx commits. With a nil
// tx it is written in a transaction of its own.
//
// When opts.UniqueKey is held by a pending or running job, nothing is
// written and Enqueue returns that job with an error wrapping ErrDuplicate
// (kind Conflict). Bad options return Invalid errors.
func (s *Service) Enqueue(ctx context.Context, tx *store.Tx, kind string, args any, opts EnqueueOptions) (*Job, error) {
	j, err := s.prepare(kind, args, opts)
	if err != nil {
		return nil, err
	}
	if tx != nil {
		return s.insert(ctx, tx, j)
	}
	var out *Job
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.insert(ctx, tx, j)
		if errors.Is(err, ErrDuplicate) {
			return nil // the transaction wrote nothing; report after it
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.ID != j.ID || j.ID == 0 {
		return out, duplicate(out)
	}
	return out, nil
}

func duplicate(j *Job) error {
	return &apperr.Error{Kind: apperr.Conflict, Err: ErrDuplicate,
		Msg: fmt.Sprintf("job %d with unique key %q is already %s", j.ID, j.UniqueKey, j.State)}
}

// prepare validates a job and fills in its defaults.
func (s *Service) prepare(kind string, args any, opts EnqueueOptions) (*Job, error) {
	if s.handler(kind) == nil {
		return nil, &apperr.Error{Kind: apperr.Invalid, Msg: fmt.Sprintf("unknown job kind %q", kind), Err: ErrUnknownKind}
	}
	var raw []byte
	switch v := args.(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		raw = v
	default:
		var err error
		if raw, err = json.Marshal(args); err != nil {
			return nil, apperr.Wrap(apperr.Invalid, err, "job arguments do not encode as JSON")
		}
	}
	if !json.Valid(raw) {
		return nil, invalid("job arguments are not valid JSON")
	}
	now := time.Now()
	j := &Job{
		Kind: kind, Queue: opts.Queue, Args: raw, Priority: opts.Priority,
		MaxAttempts: opts.MaxAttempts, Timeout: opts.Timeout, UniqueKey: opts.UniqueKey,
		Tags: opts.Tags, Created: now, RunAt: opts.RunAt, State: StateAvailable,
	}
	if j.Queue == "" {
		j.Queue = DefaultQueue
	}
	switch {
	case !validName(j.Queue):
		return nil, invalid("queue %q: use up to 128 letters, digits and _.:-", j.Queue)
	case j.Priority < 0 || j.Priority > 100:
		return nil, invalid("priority %d is outside 0-100", j.Priority)
	case j.MaxAttempts < 0 || j.MaxAttempts > 1000:
		return nil, invalid("max attempts %d is outside 1-1000", j.MaxAttempts)
	case j.Timeout < 0:
		return nil, invalid("timeout %v is negative", j.Timeout)
	case len(j.UniqueKey) > 512:
		return nil, invalid("unique key is longer than 512 bytes")
	case len(j.Tags) > 32:
		return nil, invalid("a job takes at most 32 tags")
	}
	for _, t := range j.Tags {
		if t == "" || len(t) > 128 {
			return nil, invalid("tags must be 1 to 128 bytes long")
		}
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = s.cfg.MaxAttempts
	}
	if j.Timeout == 0 {
		j.Timeout = s.cfg.JobTimeout
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	j.Errors = []AttemptError{}
	if j.RunAt.After(now) {
		j.State = StateScheduled
	} else {
		j.RunAt = now
	}
	return j, nil
}

// insert writes a prepared job in tx and, once tx commits, wakes this
// node's workers of its queue.
func (s *Service) insert(ctx context.Context, tx *store.Tx, j *Job) (*Job, error) {
	ok, err := insertJob(ctx, tx, j)
	if err != nil {
		return nil, err
	}
	if !ok {
		other, err := pendingByKey(ctx, tx, tx.Dialect, j.UniqueKey)
		if err != nil {
			return nil, err
		}
		return other, duplicate(other)
	}
	q := s.queues[j.Queue]
	kind := j.Kind
	tx.AfterCommit(func() {
		s.m.enqueued.WithLabelValues(kind).Inc()
		if q != nil {
			q.notify()
		}
	})
	out := *j
	return &out, nil
}

// Get returns a job; ErrNotFound (kind NotFound) when there is none.
func (s *Service) Get(ctx context.Context, id int64) (*Job, error) {
	return getJob(store.ReadPrimary(ctx), s.db.Reader(), s.db.Dialect(), id, false)
}

// ListParams filters and orders List. Empty filters match everything.
type ListParams struct {
	// Filter selects jobs in the filter language of record lists (see
	// package query) over the fields that Collection describes:
	// state = 'dead' && kind ~ 'email' && created > '2025-01-01T00:00:00Z'.
	Filter string
	// States, Kinds and Queues keep the jobs with one of the values
	// given, on top of Filter.
	States []State
	Kinds  []string
	Queues []string
	// Sort is a comma-separated list of fields, each prefixed with - for
	// descending order, as in "-created,kind"; "" means "-id", newest
	// first. The id ends every order, so that it is total.
	Sort string
	// Limit caps the jobs returned: 1 to 500, 0 means 50.
	Limit int
	// Cursor continues a list after the page that returned it as
	// NextCursor; it holds only for the same Filter, Sort, States, Kinds
	// and Queues. Pages found by cursor stay right while jobs come and go.
	Cursor string
	// Offset skips jobs before the page; prefer Cursor.
	Offset int
}

// ListResult is a page of jobs.
type ListResult struct {
	Jobs []*Job
	// More reports whether jobs beyond this page match.
	More bool
	// NextCursor continues the list after this page; "" on the last.
	NextCursor string
}

// MarshalJSON writes the page as {"items": [...], "more": bool,
// "next_cursor": string or null}, as record lists have it.
func (r *ListResult) MarshalJSON() ([]byte, error) {
	var next *string
	if r.NextCursor != "" {
		next = &r.NextCursor
	}
	return json.Marshal(struct {
		Items      []*Job  `json:"items"`
		More       bool    `json:"more"`
		NextCursor *string `json:"next_cursor"`
	}{r.Jobs, r.More, next})
}

// List returns a page of the jobs matching p. Bad parameters return
// Invalid errors whose Fields name the parameter at fault (filter, sort,
// cursor, state, limit or offset).
func (s *Service) List(ctx context.Context, p ListParams) (*ListResult, error) {
	switch {
	case p.Limit < 0 || p.Limit > 500:
		return nil, paramError("limit", fmt.Sprintf("limit %d is outside 1-500", p.Limit))
	case p.Offset < 0:
		return nil, paramError("offset", fmt.Sprintf("offset %d is negative", p.Offset))
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	if strings.TrimSpace(p.Sort) == "" {
		p.Sort = "-id"
	}
	return s.list(ctx, p)
}

// Retry makes a job that is not running available to run now. A job whose
// attempts are used up gets one more. It returns ErrNotFound, or ErrState
// (kind Conflict) for a running job or one whose unique key another
// pending job has taken meanwhile.
func (s *Service) Retry(ctx context.Context, id int64) (*Job, error) {
	var out *Job
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		j, err := getJob(ctx, tx, tx.Dialect, id, true)
		if err != nil {
			return err
		}
		if j.State == StateRunning {
			return stateConflict(j, "retried")
		}
		if j.UniqueKey != "" && !slices.Contains(pendingStates, j.State) {
			if other, err := pendingByKey(ctx, tx, tx.Dialect, j.UniqueKey); err == nil {
				return &apperr.Error{Kind: apperr.Conflict, Err: ErrState,
					Msg: fmt.Sprintf("job %d cannot be retried: job %d holds its unique key", id, other.ID)}
			}
		}
		a := newArgs(tx.Dialect)
		set := `state = 'available', run_at = ` + a.Add(store.Stamp(time.Now())) + `, finished_at = NULL, lease_until = NULL,
			max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END`
		out, err = updateReturning(ctx, tx, set, `id = `+a.Add(id)+` AND state <> 'running'`, a)
		if err != nil {
			return fmt.Errorf("retry job %d: %w", id, err)
		}
		if out == nil {
			return stateConflict(j, "retried")
		}
		if q := s.queues[out.Queue]; q != nil {
			tx.AfterCommit(q.notify)
		}
		return nil
	})
	return out, err
}

// Cancel stops a job from running: a pending job never runs; a running
// one has its context cancelled (at once on this node, at the next lease
// renewal on another) and whatever it returns is ignored. It returns
// ErrNotFound, or ErrState (kind Conflict) for a job already finished.
func (s *Service) Cancel(ctx context.Context, id int64) (*Job, error) {
	var out *Job
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		a := newArgs(tx.Dialect)
		set := `state = 'cancelled', finished_at = ` + a.Add(store.Stamp(time.Now())) + `, lease_until = NULL`
		var err error
		out, err = updateReturning(ctx, tx, set, `id = `+a.Add(id)+` AND state IN ('available', 'scheduled', 'retryable', 'running')`, a)
		if err != nil {
			return fmt.Errorf("cancel job %d: %w", id, err)
		}
		if out == nil {
			j, err := getJob(ctx, tx, tx.Dialect, id, false)
			if err != nil {
				return err
			}
			return stateConflict(j, "cancelled")
		}
		tx.AfterCommit(func() { s.cancelLocal(id, errCancelled) })
		return nil
	})
	return out, err
}

func stateConflict(j *Job, verb string) error {
	return &apperr.Error{Kind: apperr.Conflict, Err: ErrState,
		Msg: fmt.Sprintf("job %d is %s and cannot be %s", j.ID, j.State, verb)}
}

// backoff is the wait before the attempt after attempt: RetryBase doubled
// per attempt, capped at RetryMax, with the upper half jittered so that
// jobs failing together do not come back together.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.cfg.RetryMax
	if attempt < 40 {
		if e := s.cfg.RetryBase << (attempt - 1); e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(half+1)
}
