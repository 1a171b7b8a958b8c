// Package store keeps collections and records in SQL: SQLite through a pure
// Go driver, or PostgreSQL through pgx. Both engines are reached through
// database/sql, so one body of SQL serves both; what differs by engine
// (opening, column types, error codes) is switched on the Dialect.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/sqldb"
)

// Errors returned by the store. They are wrapped; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// UniqueError reports a write that broke a unique constraint.
type UniqueError struct {
	Field string // the field whose value is taken; "" when unknown
	Err   error
}

func (e *UniqueError) Error() string {
	if e.Field == "" {
		return "unique constraint violated"
	}
	return fmt.Sprintf("value of %s is already taken", e.Field)
}

func (e *UniqueError) Unwrap() error { return ErrConflict }

// Params configures Open.
type Params struct {
	// Engine is "sqlite" or "postgres".
	Engine string
	// Path is the SQLite database file.
	Path string
	// URL is the PostgreSQL connection string.
	URL string
	// Readers is the size of the SQLite reader pool.
	Readers int
	// MmapSize is how many bytes of the SQLite file its connections read
	// through a memory mapping (PRAGMA mmap_size) rather than copying
	// each page with a read call; 0 maps nothing.
	MmapSize int64
	// MaxConns caps the PostgreSQL pool, and each replica's; 0 keeps
	// pgxpool's default.
	MaxConns int
	// Replicas are the postgres:// URLs of read replicas of URL, which
	// serve reads through Reader (see replicas.go). Connection settings URL
	// gives and a replica URL leaves out, such as search_path, carry over.
	Replicas []string
	// ReplicaMaxLag is how far behind the primary a replica may fall and
	// still serve reads; 0 means 5s.
	ReplicaMaxLag time.Duration

	Logger *slog.Logger
	// Metrics receives the store's metrics; nil exports none.
	Metrics prometheus.Registerer
	// Tracer, when set, traces statements run inside a recorded span.
	Tracer trace.Tracer
}

// Querier runs statements: a *sql.DB for reads, a *sql.Tx inside Write.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DB is an open database with the system tables in place.
type DB struct {
	dialect sqldb.Dialect
	writer  *sql.DB  // SQLite: one connection; PostgreSQL: the pool
	reader  *sql.DB  // SQLite: a pool of read-only connections; PostgreSQL: the pool
	batch   *batcher // SQLite: group commit on the writer
	closers []func()
	log     *slog.Logger
	obs     *observer
	readQ   Querier // reader, observed; routed over replicas when there are some
	// replicas: PostgreSQL read replicas; nil without.
	replicas *replicaSet
}

// Open connects to the engine p names and creates the system tables.
func Open(ctx context.Context, p Params) (*DB, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if len(p.Replicas) > 0 && p.Engine != "postgres" {
		return nil, fmt.Errorf("store: read replicas need PostgreSQL, not %s", p.Engine)
	}
	var db *DB
	var err error
	switch p.Engine {
	case "sqlite":
		db, err = openSQLite(ctx, p)
	case "postgres":
		db, err = openPostgres(ctx, p)
	default:
		return nil, fmt.Errorf("store: unknown engine %q", p.Engine)
	}
	if err != nil {
		return nil, err
	}
	db.log = p.Logger
	db.obs = newObserver(db.dialect, p.Metrics, p.Tracer)
	db.readQ = observed{db.reader, db.obs}
	if db.replicas != nil {
		db.replicas.start(db.obs, p.Metrics)
		db.readQ = routed{db.replicas, db.readQ}
	}
	if db.batch != nil {
		db.batch.obs = db.obs
	}
	db.registerPoolMetrics(p.Metrics)
	if err := db.createSystemTables(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create system tables: %w", err)
	}
	return db, nil
}

// Dialect is the SQL dialect of the engine.
func (db *DB) Dialect() sqldb.Dialect { return db.dialect }

// Reader returns the handle for reads that need not see the caller's own
// uncommitted writes. On PostgreSQL with replicas, reads go to a replica
// unless ctx asks for more (WithSession, WithMinLSN, ReadPrimary).
func (db *DB) Reader() Querier { return db.readQ }

// Tx is a write transaction. Everything a write changes (the record, and the
// rows that later travel with it, such as outbox entries and audit records)
// goes through one Tx and commits or rolls back together.
type Tx struct {
	*sql.Tx
	Dialect sqldb.Dialect
	after   []func()
	// batched: the transaction holds other callers' writes too, so a
	// caller's cancellation must not interrupt a statement (SQLite would
	// roll back the whole transaction).
	batched bool
	obs     *observer
}

const sqliteDialect = sqldb.SQLite

func (tx *Tx) ctx(ctx context.Context) context.Context {
	if tx.batched {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// ExecContext runs a statement in the transaction.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return observed{tx.Tx, tx.obs}.ExecContext(tx.ctx(ctx), query, args...)
}

// QueryContext runs a query in the transaction.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return observed{tx.Tx, tx.obs}.QueryContext(tx.ctx(ctx), query, args...)
}

// QueryRowContext runs a query for one row in the transaction.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return observed{tx.Tx, tx.obs}.QueryRowContext(tx.ctx(ctx), query, args...)
}

// AfterCommit registers f to run once the transaction has committed.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// Write runs fn in a transaction and commits it if fn returns nil; if fn
// returns an error, none of its changes stay. On SQLite, concurrent writes
// share one commit (see batcher); fn must then not keep tx past its return.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) error {
	if db.batch != nil {
		return db.batch.write(ctx, fn)
	}
	sqlTx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	tx := &Tx{Tx: sqlTx, Dialect: db.dialect, obs: db.obs}
	if err := fn(tx); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	start := time.Now()
	err = sqlTx.Commit()
	db.obs.duration[opCommit].Observe(time.Since(start).Seconds())
	if err != nil {
		return db.classify(fmt.Errorf("store: commit: %w", err))
	}
	db.noteCommit(ctx)
	for _, f := range tx.after {
		f()
	}
	return nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.reader.PingContext(ctx); err != nil {
		return err
	}
	return db.writer.PingContext(ctx)
}

// Close closes every connection.
func (db *DB) Close() error {
	var errs []error
	if db.batch != nil {
		db.batch.close()
	}
	if db.replicas != nil {
		db.replicas.close()
	}
	if db.reader != db.writer {
		errs = append(errs, db.reader.Close())
	}
	errs = append(errs, db.writer.Close())
	for _, c := range db.closers {
		c()
	}
	return errors.Join(errs...)
}

// classify turns engine errors a client can cause into the store's errors.
func (db *DB) classify(err error) error {
	if err == nil {
		return nil
	}
	if db.dialect == sqldb.Postgres {
		return classifyPostgres(err)
	}
	return classifySQLite(err)
}
