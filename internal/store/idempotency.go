package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/sqldb"
)

// Idempotent is the stored outcome of a request sent with an idempotency
// key.
type Idempotent struct {
	BodyHash string
	Status   int
	Response []byte
}

// FindIdempotent returns the unexpired outcome stored under scope and key,
// or ErrNotFound.
func FindIdempotent(ctx context.Context, q Querier, d sqldb.Dialect, scope, key string, now time.Time) (*Idempotent, error) {
	ctx = ReadPrimary(ctx) // decides whether the request runs again
	a := args(d)
	stmt := fmt.Sprintf(`SELECT body_hash, status, response FROM _idempotency WHERE scope = %s AND key = %s AND expires > %s`,
		a.Add(scope), a.Add(key), a.Add(Stamp(now)))
	var it Idempotent
	var resp string
	if err := q.QueryRowContext(ctx, stmt, a.Values...).Scan(&it.BodyHash, &it.Status, &resp); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("find idempotency key: %w", err)
	}
	it.Response = []byte(resp)
	return &it, nil
}

// PutIdempotent stores the outcome of a request under scope and key until
// expires. An unexpired entry under the same key makes it return
// ErrConflict: another request with the key got there first.
func PutIdempotent(ctx context.Context, tx *Tx, scope, key string, it *Idempotent, now, expires time.Time) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _idempotency (scope, key, body_hash, status, response, expires) VALUES (%s, %s, %s, %s, %s, %s)
		ON CONFLICT (scope, key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
			response = excluded.response, expires = excluded.expires
		WHERE _idempotency.expires <= %s`,
		a.Add(scope), a.Add(key), a.Add(it.BodyHash), a.Add(it.Status), a.Add(string(it.Response)), a.Add(Stamp(expires)), a.Add(Stamp(now)))
	res, err := tx.ExecContext(ctx, stmt, a.Values...)
	if err != nil {
		return fmt.Errorf("store idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("idempotency key %q: %w", key, ErrConflict)
	}
	return nil
}

// PruneIdempotent deletes expired entries and returns how many.
func (db *DB) PruneIdempotent(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.Write(ctx, func(tx *Tx) error {
		a := args(tx.Dialect)
		res, err := tx.ExecContext(ctx, "DELETE FROM _idempotency WHERE expires <= "+a.Add(Stamp(now)), a.Values...)
		if err != nil {
			return fmt.Errorf("prune idempotency keys: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
