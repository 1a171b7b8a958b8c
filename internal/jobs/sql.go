package jobs

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

const jobCols = `id, kind, queue, args, state, priority, run_at, attempt, max_attempts, timeout_ms, unique_key, tags, errors, created, attempted_at, finished_at, locked_by, lease_until`

func parseStamp(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, _ := schema.ParseStoredTime(s.String)
	return t
}

func newArgs(d sqldb.Dialect) *sqldb.Args { return &sqldb.Args{Dialect: d} }

// inList adds vals and returns their placeholders, comma-separated.
type scanner interface{ Scan(dest ...any) error }

func scanJob(r scanner) (*Job, error) {
	j := &Job{}
	var args, state, tags, errs string
	var runAt, created string
	var unique, attempted, finished, lockedBy, lease sql.NullString
	var timeoutMS int64
	err := r.Scan(&j.ID, &j.Kind, &j.Queue, &args, &state, &j.Priority, &runAt, &j.Attempt, &j.MaxAttempts,
		&timeoutMS, &unique, &tags, &errs, &created, &attempted, &finished, &lockedBy, &lease)
	if err != nil {
		return nil, err
	}
	j.Args = json.RawMessage(args)
	j.State = State(state)
	j.RunAt = parseStamp(sql.NullString{String: runAt, Valid: true})
	j.Created = parseStamp(sql.NullString{String: created, Valid: true})
	j.Timeout = time.Duration(timeoutMS) * time.Millisecond
	j.UniqueKey = unique.String
	j.AttemptedAt = parseStamp(attempted)
	j.FinishedAt = parseStamp(finished)
	j.AttemptedBy = lockedBy.String
	j.LeaseUntil = parseStamp(lease)
	if err := json.Unmarshal([]byte(tags), &j.Tags); err != nil {
		return nil, fmt.Errorf("job %d: tags: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(errs), &j.Errors); err != nil {
		return nil, fmt.Errorf("job %d: errors: %w", j.ID, err)
	}
	return j, nil
}

func scanJobs(rows *sql.Rows) ([]*Job, error) {
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func marshalList[T any](v []T) string {
	if v == nil {
		return "[]"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// insertJob writes j and sets its ID. It reports false, writing nothing,
// when j's unique key is held by a pending or running job.
func insertJob(ctx context.Context, tx *store.Tx, j *Job) (bool, error) {
	a := newArgs(tx.Dialect)
	var unique any
	if j.UniqueKey != "" {
		unique = j.UniqueKey
	}
	stmt := `INSERT INTO _jobs (kind, queue, args, state, priority, run_at, attempt, max_attempts, timeout_ms, unique_key, tags, errors, created)
		VALUES (` + strings.Join([]string{a.Add(j.Kind), a.Add(j.Queue), a.Add(string(j.Args)), a.Add(string(j.State)),
		a.Add(j.Priority), a.Add(store.Stamp(j.RunAt)), "0", a.Add(j.MaxAttempts), a.Add(j.Timeout.Milliseconds()), a.Add(unique),
		a.Add(marshalList(j.Tags)), "'[]'", a.Add(store.Stamp(j.Created))}, ", ") + `)
		ON CONFLICT (unique_key) WHERE ` + uniquePredicate + ` DO NOTHING RETURNING id`
	err := tx.QueryRowContext(ctx, stmt, a.Values...).Scan(&j.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert job: %w", err)
	}
	return true, nil
}

// pendingByKey returns the pending or running job holding key.
func pendingByKey(ctx context.Context, q store.Querier, d sqldb.Dialect, key string) (*Job, error) {
	a := newArgs(d)
	row := q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM _jobs WHERE unique_key = `+a.Add(key)+` AND `+uniquePredicate, a.Values...)
	j, err := scanJob(row)
	if err != nil {
		return nil, fmt.Errorf("find job by unique key: %w", err)
	}
	return j, nil
}

// fetchJobs takes up to n runnable jobs of queue and kinds for worker,
// leasing them until lease. On PostgreSQL, SKIP LOCKED lets workers on
// many nodes take from one queue without waiting on each other; on SQLite
// the single writer serializes the takes.
func fetchJobs(ctx context.Context, tx *store.Tx, queue string, kinds []string, n int, worker string, now, lease time.Time) ([]*Job, error) {
	a := newArgs(tx.Dialect)
	set := `state = 'running', attempt = attempt + 1, attempted_at = ` + a.Add(store.Stamp(now)) +
		`, locked_by = ` + a.Add(worker) + `, lease_until = ` + a.Add(store.Stamp(lease))
	pick := `SELECT id FROM _jobs WHERE queue = ` + a.Add(queue) +
		` AND state IN ('available', 'scheduled', 'retryable') AND run_at <= ` + a.Add(store.Stamp(now)) +
		` AND ` + sqldb.In(a, "kind", kinds) + ` ORDER BY priority, run_at, id LIMIT ` + a.Add(n)
	var stmt string
	if tx.Dialect == sqldb.Postgres {
		stmt = `WITH picked AS (` + pick + ` FOR UPDATE SKIP LOCKED)
			UPDATE _jobs SET ` + set + ` FROM picked WHERE _jobs.id = picked.id RETURNING ` + qualified("_jobs")
	} else {
		stmt = `UPDATE _jobs SET ` + set + ` WHERE id IN (` + pick + `) RETURNING ` + jobCols
	}
	rows, err := tx.QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("fetch jobs: %w", err)
	}
	return scanJobs(rows)
}

func qualified(table string) string {
	cols := strings.Split(jobCols, ", ")
	for i, c := range cols {
		cols[i] = table + "." + c
	}
	return strings.Join(cols, ", ")
}

// fence is the condition every write by the worker of an attempt carries.
func fence(a *sqldb.Args, j *Job, worker string) string {
	return `id = ` + a.Add(j.ID) + ` AND state = 'running' AND locked_by = ` + a.Add(worker) + ` AND attempt = ` + a.Add(j.Attempt)
}

// finishAttempt records the end of j's current attempt. It reports false
// when the worker no longer holds the job.
func finishAttempt(ctx context.Context, tx *store.Tx, j *Job, worker string, state State, runAt time.Time, errs []AttemptError, now time.Time) (bool, error) {
	a := newArgs(tx.Dialect)
	set := `state = ` + a.Add(string(state)) + `, lease_until = NULL`
	if state == StateRetryable {
		set += `, run_at = ` + a.Add(store.Stamp(runAt))
	} else {
		set += `, finished_at = ` + a.Add(store.Stamp(now))
	}
	if errs != nil {
		set += `, errors = ` + a.Add(marshalList(errs))
	}
	res, err := tx.ExecContext(ctx, `UPDATE _jobs SET `+set+` WHERE `+fence(a, j, worker), a.Values...)
	if err != nil {
		return false, fmt.Errorf("finish job %d: %w", j.ID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// extendLeases renews the leases worker holds on ids and returns the ids
// it still holds, with their attempts.
func extendLeases(ctx context.Context, tx *store.Tx, worker string, ids []int64, until time.Time) (map[int64]int, error) {
	a := newArgs(tx.Dialect)
	stmt := `UPDATE _jobs SET lease_until = ` + a.Add(store.Stamp(until)) + ` WHERE state = 'running' AND locked_by = ` + a.Add(worker) +
		` AND ` + sqldb.In(a, "id", ids) + ` RETURNING id, attempt`
	rows, err := tx.QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("extend job leases: %w", err)
	}
	defer rows.Close()
	held := make(map[int64]int, len(ids))
	for rows.Next() {
		var id int64
		var attempt int
		if err := rows.Scan(&id, &attempt); err != nil {
			return nil, err
		}
		held[id] = attempt
	}
	return held, rows.Err()
}

// releaseJobs gives jobs worker holds back to the queue to run now,
// without counting the interrupted attempt.
func releaseJobs(ctx context.Context, tx *store.Tx, worker string, jobs []*Job, now time.Time) (int64, error) {
	var total int64
	for _, j := range jobs {
		a := newArgs(tx.Dialect)
		res, err := tx.ExecContext(ctx, `UPDATE _jobs SET state = 'available', attempt = attempt - 1, run_at = `+a.Add(store.Stamp(now))+
			`, lease_until = NULL WHERE `+fence(a, j, worker), a.Values...)
		if err != nil {
			return total, fmt.Errorf("release job %d: %w", j.ID, err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// expiredJobs returns running jobs whose lease ended before now, locking
// them on PostgreSQL.
func expiredJobs(ctx context.Context, tx *store.Tx, now time.Time, limit int) ([]*Job, error) {
	a := newArgs(tx.Dialect)
	stmt := `SELECT ` + jobCols + ` FROM _jobs WHERE state = 'running' AND lease_until < ` + a.Add(store.Stamp(now)) +
		` ORDER BY lease_until LIMIT ` + a.Add(limit)
	if tx.Dialect == sqldb.Postgres {
		stmt += ` FOR UPDATE SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("find expired jobs: %w", err)
	}
	return scanJobs(rows)
}

func getJob(ctx context.Context, q store.Querier, d sqldb.Dialect, id int64, lock bool) (*Job, error) {
	a := newArgs(d)
	stmt := `SELECT ` + jobCols + ` FROM _jobs WHERE id = ` + a.Add(id)
	if lock && d == sqldb.Postgres {
		stmt += ` FOR UPDATE`
	}
	j, err := scanJob(q.QueryRowContext(ctx, stmt, a.Values...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get job %d: %w", id, err)
	}
	return j, nil
}

// updateReturning runs an UPDATE of one job and returns the job after it,
// or nil when no row matched.
func updateReturning(ctx context.Context, tx *store.Tx, set, where string, a *sqldb.Args) (*Job, error) {
	j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE _jobs SET `+set+` WHERE `+where+` RETURNING `+jobCols, a.Values...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}
