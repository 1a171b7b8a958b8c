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

// migrate creates the tables, one node at a time.
func migrate(ctx context.Context, db *store.DB) error {
	if err := db.CreateTables(ctx, ddl(db.Dialect())); err != nil {
		return fmt.Errorf("jobs: create tables: %w", err)
	}
	return nil
}
