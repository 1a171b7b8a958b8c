package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// LockedUntil returns until when sign-ins under key are refused (zero when
// they are not).
func LockedUntil(ctx context.Context, q Querier, d sqldb.Dialect, key string, now time.Time) (time.Time, error) {
	ctx = ReadPrimary(ctx) // a lockout takes effect at once
	a := args(d)
	var until string
	err := q.QueryRowContext(ctx, `SELECT locked_until FROM _login_failures WHERE key = `+a.Add(key), a.Values...).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read login failures: %w", err)
	}
	t, _ := schema.ParseStoredTime(until)
	if !t.After(now) {
		return time.Time{}, nil
	}
	return t, nil
}

// RecordFailure counts a failed sign-in under key and sets the lock that
// lock computes from the count. Counts older than forget start again.
func RecordFailure(ctx context.Context, tx *Tx, key string, now time.Time, forget time.Duration, lock func(failures int) time.Duration) error {
	a := args(tx.Dialect)
	var failures int
	var updated string
	err := tx.QueryRowContext(ctx, `SELECT failures, updated FROM _login_failures WHERE key = `+a.Add(key)+forUpdate(tx.Dialect), a.Values...).Scan(&failures, &updated)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read login failures: %w", err)
	}
	if t, _ := schema.ParseStoredTime(updated); now.Sub(t) > forget {
		failures = 0
	}
	failures++
	until := now.Add(lock(failures))
	a = args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _login_failures (key, failures, locked_until, updated) VALUES (%s, %s, %s, %s)
		ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated = excluded.updated`,
		a.Add(key), a.Add(failures), a.Add(Stamp(until)), a.Add(Stamp(now)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// ClearFailures forgets the failures under key.
func ClearFailures(ctx context.Context, tx *Tx, key string) error {
	a := args(tx.Dialect)
	_, err := tx.ExecContext(ctx, `DELETE FROM _login_failures WHERE key = `+a.Add(key), a.Values...)
	return err
}
