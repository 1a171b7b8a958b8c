package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/telemetry"
)

// PostgreSQL read replicas. Reads through DB.Reader go round robin to the
// replicas in rotation; writes, and reads inside a write, go to the
// primary. A poller reads each replica's replay position every
// replicaPoll and the primary's WAL position, and from them the replica's
// lag in bytes and in time. A replica leaves the rotation when it is
// unreachable, not in recovery (promoted, or not a replica at all), or more
// than Params.ReplicaMaxLag behind; it comes back once it is reachable
// again and less than half that behind. A read that carries a session
// (consistency.go) goes to a replica only if that replica had replayed the
// session's LSN at its last poll. A read a replica fails for a reason that
// is not the statement's (connection lost, recovery conflict, read-only) is
// answered by the primary, and the replica leaves the rotation until its
// next good poll.

const (
	defaultReplicaMaxLag = 5 * time.Second
	replicaPoll          = 100 * time.Millisecond
	replicaPollTimeout   = time.Second
)

// replica is one read replica and what the poller last learned of it.
type replica struct {
	name string // host:port, for metrics and reports
	db   *sql.DB
	pool *pgxpool.Pool
	q    observed

	inRotation atomic.Bool
	replay     atomic.Uint64 // LSN replayed, at the last good poll

	mu         sync.Mutex
	lagSeconds float64
	lagBytes   float64
	reason     string // why out of rotation; "" in rotation
}

// walSample is the primary's WAL position at a moment.
type walSample struct {
	at  time.Time
	lsn LSN
}

// replicaSet routes reads over the replicas of one primary.
type replicaSet struct {
	primary *sql.DB
	all     []*replica
	next    atomic.Uint64
	maxLag  time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	samples []walSample // the primary's positions, oldest first
	keep    int         // samples kept: a little more than 2 × maxLag

	reads   *prometheus.CounterVec
	toRep   prometheus.Counter
	toPrim  prometheus.Counter
	stop    context.CancelFunc
	stopped sync.WaitGroup
}

// openReplicas makes pools for the replica URLs. Settings the primary's URL
// gives and a replica's leaves out (search_path, application_name, ...)
// carry over, so that a replica reads the tables the primary writes. The
// pools connect lazily: a replica down at start is out of rotation, not an
// error.
func openReplicas(p Params, primary *pgxpool.Config, writer *sql.DB) (*replicaSet, error) {
	maxLag := p.ReplicaMaxLag
	if maxLag <= 0 {
		maxLag = defaultReplicaMaxLag
	}
	rs := &replicaSet{primary: writer, maxLag: maxLag, log: p.Logger,
		keep: min(int(2*maxLag/replicaPoll)+8, 20000)}
	names := map[string]int{}
	for i, u := range p.Replicas {
		cfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			rs.close()
			return nil, fmt.Errorf("store: parse replica url %d: %w", i+1, err)
		}
		for k, v := range primary.ConnConfig.RuntimeParams {
			if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
				cfg.ConnConfig.RuntimeParams[k] = v
			}
		}
		if p.MaxConns > 0 {
			cfg.MaxConns = int32(p.MaxConns)
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			rs.close()
			return nil, fmt.Errorf("store: replica %d: %w", i+1, err)
		}
		name := cfg.ConnConfig.Host + ":" + strconv.Itoa(int(cfg.ConnConfig.Port))
		if n := names[name]; n > 0 {
			name += "#" + strconv.Itoa(n+1)
		}
		names[cfg.ConnConfig.Host+":"+strconv.Itoa(int(cfg.ConnConfig.Port))]++
		r := &replica{name: name, pool: pool, db: stdlib.OpenDBFromPool(pool), reason: "not polled yet"}
		rs.all = append(rs.all, r)
	}
	return rs, nil
}

// start wires the replicas to the observer and metrics and starts polling.
func (rs *replicaSet) start(obs *observer, reg prometheus.Registerer) {
	for _, r := range rs.all {
		r.q = observed{r.db, obs}
	}
	rs.reads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_db_reads_total",
		Help: "Reads through the reader, by where they ran: a replica or the primary.",
	}, []string{"target"})
	rs.toRep, rs.toPrim = rs.reads.WithLabelValues("replica"), rs.reads.WithLabelValues("primary")
	if reg != nil {
		rs.register(reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs.stop = cancel
	rs.poll(ctx) // a first state before Open returns
	rs.stopped.Go(func() {
		t := time.NewTicker(replicaPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rs.poll(ctx)
			}
		}
	})
}

func (rs *replicaSet) register(reg prometheus.Registerer) {
	gauge := func(name, help string, v func(r *replica) float64) {
		desc := prometheus.NewDesc(name, help, []string{"replica"}, nil)
		reg.MustRegister(collectorFunc{desc, func(ch chan<- prometheus.Metric) {
			for _, r := range rs.all {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v(r), r.name)
			}
		}})
	}
	gauge("strata_db_replica_lag_seconds", "How far a read replica is behind the primary, in time.",
		func(r *replica) float64 { r.mu.Lock(); defer r.mu.Unlock(); return r.lagSeconds })
	gauge("strata_db_replica_lag_bytes", "How far a read replica is behind the primary, in WAL bytes.",
		func(r *replica) float64 { r.mu.Lock(); defer r.mu.Unlock(); return r.lagBytes })
	gauge("strata_db_replica_in_rotation", "1 when a read replica gets reads, 0 when it is left out.",
		func(r *replica) float64 {
			if r.inRotation.Load() {
				return 1
			}
			return 0
		})
	reg.MustRegister(rs.reads)
}

// collectorFunc is a collector of one metric family, made by fn.
type collectorFunc struct {
	desc *prometheus.Desc
	fn   func(ch chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.fn(ch) }

func (rs *replicaSet) close() {
	if rs.stop != nil {
		rs.stop()
		rs.stopped.Wait()
	}
	for _, r := range rs.all {
		_ = r.db.Close()
		r.pool.Close()
	}
}

// poll reads the primary's position, then every replica's, at once.
func (rs *replicaSet) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, replicaPollTimeout)
	defer cancel()
	var text string
	if err := rs.primary.QueryRowContext(pctx, `SELECT pg_current_wal_lsn()::text`).Scan(&text); err == nil {
		if l, err := ParseLSN(text); err == nil {
			rs.mu.Lock()
			rs.samples = append(rs.samples, walSample{time.Now(), l})
			if len(rs.samples) > rs.keep {
				rs.samples = append(rs.samples[:0], rs.samples[len(rs.samples)-rs.keep:]...)
			}
			rs.mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for _, r := range rs.all {
		wg.Go(func() { rs.pollReplica(pctx, r) })
	}
	wg.Wait()
}

func (rs *replicaSet) pollReplica(ctx context.Context, r *replica) {
	var (
		recovery bool
		replay   sql.NullString
		xactLag  sql.NullFloat64
	)
	err := r.db.QueryRowContext(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
		EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8`).Scan(&recovery, &replay, &xactLag)
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // closing
	}
	switch {
	case err != nil:
		rs.set(r, false, 0, 0, "unreachable: "+short(err))
		return
	case !recovery || !replay.Valid:
		rs.set(r, false, 0, 0, "not in recovery: not a replica, or promoted")
		return
	}
	l, err := ParseLSN(replay.String)
	if err != nil {
		rs.set(r, false, 0, 0, err.Error())
		return
	}
	r.replay.Store(uint64(l))
	secs, bytes := rs.lag(l, time.Now())
	if bytes > 0 && secs == 0 && xactLag.Valid {
		secs = max(xactLag.Float64, 0) // no sample old enough: the replica's own clock
	}
	in := r.inRotation.Load()
	switch {
	case secs > rs.maxLag.Seconds():
		in = false
	case secs <= rs.maxLag.Seconds()/2:
		in = true
	}
	reason := ""
	if !in {
		reason = fmt.Sprintf("lagging %.1fs behind the primary (replica_max_lag %s)", secs, rs.maxLag)
	}
	rs.set(r, in, secs, bytes, reason)
}

// lag returns how far behind the primary a replica that replayed up to l
// is: bytes from the primary's latest position, and time since the first
// sample at which the primary had written past l. Samples are taken on
// every poll, so the time is a lower bound off by at most one poll interval;
// 0 when l is not older than the samples kept.
func (rs *replicaSet) lag(l LSN, now time.Time) (seconds, bytes float64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.samples) == 0 {
		return 0, 0
	}
	last := rs.samples[len(rs.samples)-1]
	if l >= last.lsn {
		return 0, 0
	}
	bytes = float64(last.lsn - l)
	for i, s := range rs.samples {
		if s.lsn > l {
			if i == 0 {
				return 0, bytes // older than every sample: the caller decides
			}
			return now.Sub(s.at).Seconds(), bytes
		}
	}
	return 0, bytes
}

func (rs *replicaSet) set(r *replica, in bool, secs, bytes float64, reason string) {
	r.mu.Lock()
	r.lagSeconds, r.lagBytes, r.reason = secs, bytes, reason
	r.mu.Unlock()
	was := r.inRotation.Swap(in)
	switch {
	case was && !in:
		rs.log.Warn("store: replica out of rotation", "replica", r.name, "reason", reason)
	case !was && in:
		rs.log.Info("store: replica in rotation", "replica", r.name)
	}
}

// fail takes r out of rotation after a read it could not serve; the next
// good poll brings it back.
func (rs *replicaSet) fail(r *replica, err error) {
	r.mu.Lock()
	r.reason = "failed a read: " + short(err)
	r.mu.Unlock()
	if r.inRotation.Swap(false) {
		rs.log.Warn("store: replica out of rotation", "replica", r.name, "reason", "failed a read", "err", err)
	}
}

// pick returns the replica to read from with ctx, or nil for the primary.
func (rs *replicaSet) pick(ctx context.Context) *replica {
	if readsPrimary(ctx) {
		return nil
	}
	need := LastLSN(ctx)
	if need == lsnUnknown {
		return nil
	}
	n := uint64(len(rs.all))
	start := rs.next.Add(1)
	for i := range n {
		r := rs.all[(start+i)%n]
		if r.inRotation.Load() && LSN(r.replay.Load()) >= need {
			return r
		}
	}
	return nil
}

// short is the first line of an error, for reports.
func short(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// replicaFault reports whether err, from a read on a replica, is the
// replica's doing rather than the statement's, so that the primary should
// answer instead: the connection failed, the server is shutting down or
// short of resources, the read conflicted with recovery, or the statement
// needs a writable server.
func replicaFault(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil {
		return false
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true // not the server's answer: the connection
	}
	switch pe.Code[:2] {
	case "08", "57", "53", "58", "25", "40":
		return true
	}
	return false
}

// routed is the reader of a database with replicas.
type routed struct {
	rs      *replicaSet
	primary Querier
}

func (q routed) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	// A statement run for its effect belongs on the primary.
	q.rs.toPrim.Inc()
	return q.primary.ExecContext(ctx, query, args...)
}

func (q routed) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if r := q.rs.pick(ctx); r != nil {
		rows, err := r.q.QueryContext(ctx, query, args...)
		if !replicaFault(ctx, err) {
			q.rs.toRep.Inc()
			return rows, err
		}
		q.rs.fail(r, err)
	}
	q.rs.toPrim.Inc()
	return q.primary.QueryContext(ctx, query, args...)
}

func (q routed) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if r := q.rs.pick(ctx); r != nil {
		row := r.q.QueryRowContext(ctx, query, args...)
		err := row.Err()
		if !replicaFault(ctx, err) {
			q.rs.toRep.Inc()
			return row
		}
		q.rs.fail(r, err)
	}
	q.rs.toPrim.Inc()
	return q.primary.QueryRowContext(ctx, query, args...)
}

// ReplicaState is what the store knows of one read replica.
type ReplicaState struct {
	Name       string  `json:"name"` // host:port
	InRotation bool    `json:"in_rotation"`
	Reason     string  `json:"reason,omitempty"` // why not in rotation
	LagSeconds float64 `json:"lag_seconds"`
	LagBytes   int64   `json:"lag_bytes"`
	ReplayLSN  string  `json:"replay_lsn"`
}

// HasReplicas reports whether reads may go to read replicas: only then
// can a read miss a write that committed before it.
func (db *DB) HasReplicas() bool { return db.replicas != nil }

// Replicas returns the state of every read replica, as of the last poll;
// none without replicas.
func (db *DB) Replicas() []ReplicaState {
	if db.replicas == nil {
		return nil
	}
	out := make([]ReplicaState, 0, len(db.replicas.all))
	for _, r := range db.replicas.all {
		r.mu.Lock()
		st := ReplicaState{Name: r.name, InRotation: r.inRotation.Load(), Reason: r.reason,
			LagSeconds: r.lagSeconds, LagBytes: int64(r.lagBytes), ReplayLSN: LSN(r.replay.Load()).String()}
		r.mu.Unlock()
		if st.InRotation {
			st.Reason = ""
		}
		out = append(out, st)
	}
	return out
}

// ReplicaHealth is the readiness check of the read replicas. Replicas out
// of rotation do not make a node unready, since the primary serves their
// reads: it returns nil whenever the primary answers, whatever the
// replicas' state (see Replicas and the strata_db_replica_* metrics for
// that). When the primary does not answer either, the error names the
// primary's failure and every replica out of rotation with its reason;
// the text holds no URL or password, and what /readyz shows anonymous
// callers is only the counts (a telemetry.Unavailable). Without replicas it
// checks the primary alone.
func (db *DB) ReplicaHealth(ctx context.Context) error {
	perr := db.writer.PingContext(ctx)
	if perr == nil {
		return nil
	}
	msg := []string{"primary: " + short(perr)}
	out := 0
	states := db.Replicas()
	for _, st := range states {
		if !st.InRotation {
			out++
			msg = append(msg, fmt.Sprintf("replica %s out of rotation: %s", st.Name, st.Reason))
		}
	}
	safe := telemetry.Unavailable{Reason: fmt.Sprintf("primary does not answer; %d of %d replicas out of rotation", out, len(states))}
	return errors.Join(safe, errors.New(strings.Join(msg, "; ")))
}
