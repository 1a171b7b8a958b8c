package jobs

import (
	"context"
	"fmt"

	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// The tables. Timestamps are fixed-width UTC text (schema.TimeLayout) as in
// every system table, so they compare as strings on both engines.
//
// locked_by is the worker that took the last attempt; together with state
// 'running' and attempt it fences every write a worker makes: a worker that
// lost its lease (or whose job was cancelled or released) updates nothing.

func ddl(d sqldb.Dialect) []string {
	id := "id INTEGER PRIMARY KEY"
	if d == sqldb.Postgres {
		id = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS _jobs (
		` + id + `,
		kind TEXT NOT NULL,
		queue TEXT NOT NULL,
		args TEXT NOT NULL,
		state TEXT NOT NULL,
		priority INTEGER NOT NULL,
		run_at TEXT NOT NULL,
		attempt INTEGER NOT NULL,
		max_attempts INTEGER NOT NULL,
		timeout_ms BIGINT NOT NULL,
		unique_key TEXT,
		tags TEXT NOT NULL,
		errors TEXT NOT NULL,
		created TEXT NOT NULL,
		attempted_at TEXT,
		finished_at TEXT,
		locked_by TEXT,
		lease_until TEXT)`,
		`CREATE INDEX IF NOT EXISTS _jobs_fetch ON _jobs (queue, priority, run_at, id) WHERE state IN ('available', 'scheduled', 'retryable')`,
		`CREATE INDEX IF NOT EXISTS _jobs_lease ON _jobs (lease_until) WHERE state = 'running'`,
		`CREATE INDEX IF NOT EXISTS _jobs_finished ON _jobs (finished_at) WHERE state IN ('completed', 'cancelled')`,
		`CREATE INDEX IF NOT EXISTS _jobs_state_kind ON _jobs (state, kind)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS _jobs_unique ON _jobs (unique_key) WHERE ` + uniquePredicate,
		`CREATE TABLE IF NOT EXISTS _job_schedules (
		name TEXT PRIMARY KEY,
		last_tick TEXT NOT NULL)`,
	}
}

// uniquePredicate is the predicate of the partial unique index; ON
// CONFLICT names it to pick the index.
const uniquePredicate = `unique_key IS NOT NULL AND state IN ('available', 'scheduled', 'retryable', 'running')`

// migrate creates the tables. On PostgreSQL an advisory lock keeps nodes
// starting together from racing on CREATE TABLE IF NOT EXISTS, which is
// not safe against itself there.
func migrate(ctx context.Context, db *store.DB) error {
	err := db.Write(ctx, func(tx *store.Tx) error {
		if tx.Dialect == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7270315001)`); err != nil {
				return err
			}
		}
		for _, stmt := range ddl(tx.Dialect) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: create tables: %w", err)
	}
	return nil
}
