package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/strata-dev/strata/internal/sqldb"
)

// MFA is a record's second factor: a TOTP secret and the hashes of its
// unused recovery codes.
type MFA struct {
	Collection, RecordID string
	Secret               string
	Enabled              bool
	Recovery             string // JSON array of hashes
	// LastStep is the TOTP time step last accepted: a code works once.
	LastStep int64
}

// FindMFA returns the second factor of a record, or ErrNotFound. With
// lock, PostgreSQL holds the row until the transaction ends.
func FindMFA(ctx context.Context, q Querier, d sqldb.Dialect, collection, recordID string, lock bool) (*MFA, error) {
	ctx = ReadPrimary(ctx) // enabling MFA takes effect at once
	a := args(d)
	stmt := fmt.Sprintf(`SELECT collection, record_id, secret, enabled, recovery, last_step FROM _mfa WHERE collection = %s AND record_id = %s`,
		a.Add(collection), a.Add(recordID))
	if lock {
		stmt += forUpdate(d)
	}
	var m MFA
	var enabled int
	err := q.QueryRowContext(ctx, stmt, a.Values...).Scan(&m.Collection, &m.RecordID, &m.Secret, &enabled, &m.Recovery, &m.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find mfa: %w", err)
	}
	m.Enabled = enabled != 0
	return &m, nil
}

// PutMFA stores a record's second factor.
func PutMFA(ctx context.Context, tx *Tx, m *MFA) error {
	a := args(tx.Dialect)
	enabled := 0
	if m.Enabled {
		enabled = 1
	}
	stmt := fmt.Sprintf(`INSERT INTO _mfa (collection, record_id, secret, enabled, recovery, last_step) VALUES (%s, %s, %s, %s, %s, %s)
		ON CONFLICT (collection, record_id) DO UPDATE SET secret = excluded.secret, enabled = excluded.enabled,
			recovery = excluded.recovery, last_step = excluded.last_step`,
		a.Add(m.Collection), a.Add(m.RecordID), a.Add(m.Secret), a.Add(enabled), a.Add(m.Recovery), a.Add(m.LastStep))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("save mfa: %w", err)
	}
	return nil
}

// DeleteMFA removes a record's second factor.
func DeleteMFA(ctx context.Context, tx *Tx, collection, recordID string) error {
	a := args(tx.Dialect)
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM _mfa WHERE collection = %s AND record_id = %s`, a.Add(collection), a.Add(recordID)), a.Values...)
	return err
}
