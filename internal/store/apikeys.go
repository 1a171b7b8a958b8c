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

// APIKey is a stored API key. The key itself is never stored, only its
// SHA-256.
type APIKey struct {
	ID              string
	Hash            string
	OwnerCollection string // "_superusers" or an auth collection
	OwnerID         string
	Name            string
	Scopes          string // JSON
	RateLimit       string // the key's own request limit; "" for the default
	Created         time.Time
	Expires         *time.Time
	LastUsed        *time.Time
	Revoked         *time.Time
}

const apiKeyColumns = `id, hash, owner_collection, owner_id, name, scopes, rate_limit, created, expires, last_used, revoked`

// InsertAPIKey stores a new key.
func InsertAPIKey(ctx context.Context, tx *Tx, k *APIKey) error {
	a := args(tx.Dialect)
	var expires any
	if k.Expires != nil {
		expires = Stamp(*k.Expires)
	}
	stmt := fmt.Sprintf(`INSERT INTO _api_keys (id, hash, owner_collection, owner_id, name, scopes, rate_limit, created, expires) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)`,
		a.Add(k.ID), a.Add(k.Hash), a.Add(k.OwnerCollection), a.Add(k.OwnerID), a.Add(k.Name), a.Add(k.Scopes), a.Add(k.RateLimit), a.Add(Stamp(k.Created)), a.Add(expires))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
}

func scanAPIKey(sc interface{ Scan(...any) error }) (*APIKey, error) {
	var k APIKey
	var created string
	var expires, lastUsed, revoked sql.NullString
	if err := sc.Scan(&k.ID, &k.Hash, &k.OwnerCollection, &k.OwnerID, &k.Name, &k.Scopes, &k.RateLimit, &created, &expires, &lastUsed, &revoked); err != nil {
		return nil, err
	}
	k.Created, _ = schema.ParseStoredTime(created)
	opt := func(s sql.NullString) *time.Time {
		if !s.Valid {
			return nil
		}
		t, _ := schema.ParseStoredTime(s.String)
		return &t
	}
	k.Expires, k.LastUsed, k.Revoked = opt(expires), opt(lastUsed), opt(revoked)
	return &k, nil
}

// FindAPIKey returns the key with the id, or ErrNotFound.
func FindAPIKey(ctx context.Context, q Querier, d sqldb.Dialect, id string) (*APIKey, error) {
	ctx = ReadPrimary(ctx) // a new key works at once, a revoked one stops at once
	a := args(d)
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM _api_keys WHERE id = `+a.Add(id), a.Values...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns the keys of an owner, or every key when owner is "".
func ListAPIKeys(ctx context.Context, q Querier, d sqldb.Dialect, ownerCollection, ownerID string) ([]*APIKey, error) {
	a := args(d)
	stmt := `SELECT ` + apiKeyColumns + ` FROM _api_keys`
	if ownerID != "" {
		stmt += ` WHERE owner_collection = ` + a.Add(ownerCollection) + ` AND owner_id = ` + a.Add(ownerID)
	}
	rows, err := q.QueryContext(ctx, stmt+` ORDER BY created, id`, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []*APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// TouchAPIKey sets when a key was last used.
func TouchAPIKey(ctx context.Context, tx *Tx, id string, now time.Time) error {
	return setTime(ctx, tx, "_api_keys", "last_used", id, now)
}

// setTime sets a time column of the row of table with the id.
func setTime(ctx context.Context, tx *Tx, table, column, id string, t time.Time) error {
	a := args(tx.Dialect)
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = %s WHERE id = %s`, table, column, a.Add(Stamp(t)), a.Add(id)), a.Values...)
	if err != nil {
		return fmt.Errorf("set %s.%s: %w", table, column, err)
	}
	return nil
}

// RevokeAPIKey revokes a key; ErrNotFound when no unrevoked key has the id.
func RevokeAPIKey(ctx context.Context, tx *Tx, id string, now time.Time) error {
	return revoke(ctx, tx, "_api_keys", id, now)
}

// revoke sets the revoked time of the row of table with the id, unless it
// is revoked already; ErrNotFound when no such row is left.
func revoke(ctx context.Context, tx *Tx, table, id string, now time.Time) error {
	a := args(tx.Dialect)
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET revoked = %s WHERE id = %s AND revoked IS NULL`, table, a.Add(Stamp(now)), a.Add(id)), a.Values...)
	if err != nil {
		return fmt.Errorf("revoke in %s: %w", table, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
