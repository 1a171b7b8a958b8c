package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// InsertAuthToken stores the hash of a one-time token of kind ("reset",
// "verify") for a record.
func InsertAuthToken(ctx context.Context, tx *Tx, hash, kind, collection, recordID string, expires time.Time) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _auth_tokens (hash, kind, collection, record_id, expires) VALUES (%s, %s, %s, %s, %s)`,
		a.Add(hash), a.Add(kind), a.Add(collection), a.Add(recordID), a.Add(Stamp(expires)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert auth token: %w", err)
	}
	return nil
}

// UseAuthToken spends the unused, unexpired token of kind with the hash and
// returns its record; ErrNotFound when there is none.
func UseAuthToken(ctx context.Context, tx *Tx, hash, kind, collection string, now time.Time) (string, error) {
	a := args(tx.Dialect)
	var recordID string
	err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT record_id FROM _auth_tokens WHERE hash = %s AND kind = %s AND collection = %s AND used IS NULL AND expires > %s`,
		a.Add(hash), a.Add(kind), a.Add(collection), a.Add(Stamp(now)))+forUpdate(tx.Dialect), a.Values...).Scan(&recordID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find auth token: %w", err)
	}
	a = args(tx.Dialect)
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE _auth_tokens SET used = %s WHERE hash = %s`, a.Add(Stamp(now)), a.Add(hash)), a.Values...); err != nil {
		return "", fmt.Errorf("use auth token: %w", err)
	}
	return recordID, nil
}
