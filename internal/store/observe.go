package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Every statement is timed into strata_db_query_duration_seconds by engine
// and operation, and, when the statement runs inside a traced request, gets
// a span of its own. Statements outside a recording span (background
// pruning, migrations at start) get none, so tracing costs nothing where
// nobody looks.

// op is the kind of a statement, from its first keyword.
type op uint8

const (
	opSelect op = iota
	opInsert
	opUpdate
	opDelete
	opCommit
	opOther
	numOps
)

var opNames = [numOps]string{"select", "insert", "update", "delete", "commit", "other"}

// opOf classifies a statement by its first word without allocating.
func opOf(query string) op {
	i := 0
	for i < len(query) && (query[i] == ' ' || query[i] == '\n' || query[i] == '\t' || query[i] == '(') {
		i++
	}
	word := query[i:min(len(query), i+6)]
	switch {
	case equalFoldASCII(word, "select"), equalFoldASCII(query[i:min(len(query), i+4)], "with"):
		return opSelect
	case equalFoldASCII(word, "insert"):
		return opInsert
	case equalFoldASCII(word, "update"):
		return opUpdate
	case equalFoldASCII(word, "delete"):
		return opDelete
	}
	return opOther
}

func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != t[i] {
			return false
		}
	}
	return true
}

// observer times and traces the statements of one DB.
type observer struct {
	system   trace.SpanStartEventOption // db.system.name as a span option
	duration [numOps]prometheus.Observer
	tracer   trace.Tracer // nil when tracing is off
}

func newObserver(d sqldb.Dialect, reg prometheus.Registerer, tracer trace.Tracer) *observer {
	engine := "sqlite"
	system := semconv.DBSystemNameSQLite
	if d == sqldb.Postgres {
		engine, system = "postgres", semconv.DBSystemNamePostgreSQL
	}
	o := &observer{system: trace.WithAttributes(system), tracer: tracer}
	if reg == nil {
		for i := range o.duration {
			o.duration[i] = discard{}
		}
		return o
	}
	h := promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_db_query_duration_seconds",
		Help:    "Time SQL statements take until the database answers, by engine and operation.",
		Buckets: telemetry.QueryBuckets,
	}, []string{"engine", "operation"})
	for i := range o.duration {
		o.duration[i] = h.WithLabelValues(engine, opNames[i])
	}
	return o
}

// discard is the observer of statements when metrics are off.
type discard struct{}

func (discard) Observe(float64) {}

// start begins timing a statement; its span, if any, rides in the returned
// context. Call finish with what start returned.
func (o *observer) start(ctx context.Context, query string) (context.Context, op, time.Time) {
	k := opOf(query)
	if o.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		ctx, _ = o.tracer.Start(ctx, opNames[k], trace.WithSpanKind(trace.SpanKindClient), o.system,
			trace.WithAttributes(semconv.DBOperationName(opNames[k]), semconv.DBQueryText(query)))
	}
	return ctx, k, time.Now()
}

func (o *observer) finish(ctx context.Context, k op, start time.Time, err error) {
	o.duration[k].Observe(time.Since(start).Seconds())
	if o.tracer == nil {
		return
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		if err != nil && err != sql.ErrNoRows {
			span.RecordError(err)
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}

// observed runs statements on q, timing and tracing each.
type observed struct {
	q interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	o *observer
}

func (s observed) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	sctx, k, t := s.o.start(ctx, query)
	res, err := s.q.ExecContext(sctx, query, args...)
	s.o.finish(sctx, k, t, err)
	return res, err
}

func (s observed) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	sctx, k, t := s.o.start(ctx, query)
	rows, err := s.q.QueryContext(sctx, query, args...)
	s.o.finish(sctx, k, t, err)
	return rows, err
}

func (s observed) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	sctx, k, t := s.o.start(ctx, query)
	row := s.q.QueryRowContext(sctx, query, args...)
	s.o.finish(sctx, k, t, row.Err())
	return row
}

// registerPoolMetrics exports the connection pools' state (go_sql_* by
// db_name) and, on SQLite, the group-commit queue.
func (db *DB) registerPoolMetrics(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	if db.dialect == sqldb.Postgres {
		reg.MustRegister(collectors.NewDBStatsCollector(db.writer, "postgres"))
		return
	}
	reg.MustRegister(collectors.NewDBStatsCollector(db.writer, "sqlite_writer"),
		collectors.NewDBStatsCollector(db.reader, "sqlite_reader"))
	b := db.batch
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_db_write_queue_length",
		Help: "Writes waiting for the SQLite writer.",
	}, func() float64 { return float64(len(b.queue)) })
	b.batchSize = promauto.With(reg).NewHistogram(prometheus.HistogramOpts{
		Name:    "strata_db_write_batch_size",
		Help:    "Writes committed together by one SQLite group commit.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
	})
}
