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

// Session is a signed-in device of an auth record: a family of refresh
// tokens, each used once.
type Session struct {
	ID         string
	Collection string
	RecordID   string
	Created    time.Time
	Expires    time.Time
	Revoked    *time.Time
	UserAgent  string
	IP         string
}

// Active reports whether the session can still be used at now.
func (s *Session) Active(now time.Time) bool { return s.Revoked == nil && now.Before(s.Expires) }

// InsertSession stores a new session.
func InsertSession(ctx context.Context, tx *Tx, s *Session) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _sessions (id, collection, record_id, created, expires, user_agent, ip) VALUES (%s, %s, %s, %s, %s, %s, %s)`,
		a.Add(s.ID), a.Add(s.Collection), a.Add(s.RecordID), a.Add(Stamp(s.Created)), a.Add(Stamp(s.Expires)), a.Add(s.UserAgent), a.Add(s.IP))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// FindSession returns the session with the id, or ErrNotFound.
func FindSession(ctx context.Context, q Querier, d sqldb.Dialect, id string) (*Session, error) {
	ctx = ReadPrimary(ctx) // a new session works at once, an ended one stops at once
	a := args(d)
	row := q.QueryRowContext(ctx, `SELECT id, collection, record_id, created, expires, revoked, user_agent, ip FROM _sessions WHERE id = `+a.Add(id), a.Values...)
	var s Session
	var created, expires string
	var revoked sql.NullString
	if err := row.Scan(&s.ID, &s.Collection, &s.RecordID, &created, &expires, &revoked, &s.UserAgent, &s.IP); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("find session: %w", err)
	}
	s.Created, _ = schema.ParseStoredTime(created)
	s.Expires, _ = schema.ParseStoredTime(expires)
	if revoked.Valid {
		t, _ := schema.ParseStoredTime(revoked.String)
		s.Revoked = &t
	}
	return &s, nil
}

// FindSessionAccount reads, in one query, the session with the id and the
// record of c it belongs to, which must be recordID: what a request signed
// in with the session's token acts as. It returns ErrNotFound when either
// is gone. The returned Session holds the times and ids only.
func FindSessionAccount(ctx context.Context, q Querier, d sqldb.Dialect, c *schema.Collection, id, recordID string) (*Session, *schema.Record, error) {
	ctx = ReadPrimary(ctx)
	a := args(d)
	stmt := `SELECT ` + selectList(d, c) + `, s.expires, s.revoked FROM _sessions s JOIN ` + d.Quote(c.Name) +
		` r ON r."id" = s.record_id WHERE s.id = ` + a.Add(id) + ` AND s.record_id = ` + a.Add(recordID) +
		` AND s.collection = ` + a.Add(c.Name)
	r, keys, err := oneRecord(ctx, q, c, "find the session and account in", "session", id, stmt, a.Values, 2)
	if err != nil {
		return nil, nil, err
	}
	sess := &Session{ID: id, Collection: c.Name, RecordID: r.ID}
	expires, _ := keys[0].(string)
	if sess.Expires, err = schema.ParseStoredTime(expires); err != nil {
		return nil, nil, fmt.Errorf("session %s: expiry %q: %w", id, expires, err)
	}
	if revoked, ok := keys[1].(string); ok {
		t, err := schema.ParseStoredTime(revoked)
		if err != nil {
			return nil, nil, fmt.Errorf("session %s: revocation %q: %w", id, revoked, err)
		}
		sess.Revoked = &t
	}
	return sess, r, nil
}

// ExtendSession moves a session's expiry.
func ExtendSession(ctx context.Context, tx *Tx, id string, expires time.Time) error {
	return setTime(ctx, tx, "_sessions", "expires", id, expires)
}

// RevokeSession ends a session; it returns ErrNotFound when no active
// session has the id.
func RevokeSession(ctx context.Context, tx *Tx, id string, now time.Time) error {
	return revoke(ctx, tx, "_sessions", id, now)
}

// InsertRefreshToken stores the hash of a refresh token of a session.
func InsertRefreshToken(ctx context.Context, tx *Tx, hash, sessionID string, now time.Time) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _refresh_tokens (hash, session_id, created) VALUES (%s, %s, %s)`, a.Add(hash), a.Add(sessionID), a.Add(Stamp(now)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// UseRefreshToken marks the token with the hash used and returns its
// session id. used reports that it had been used before: a replay.
// It returns ErrNotFound for an unknown token.
func UseRefreshToken(ctx context.Context, tx *Tx, hash string, now time.Time) (sessionID string, used bool, err error) {
	a := args(tx.Dialect)
	var prev sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT session_id, used FROM _refresh_tokens WHERE hash = `+a.Add(hash)+forUpdate(tx.Dialect), a.Values...).Scan(&sessionID, &prev)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, ErrNotFound
	}
	if err != nil {
		return "", false, fmt.Errorf("find refresh token: %w", err)
	}
	if prev.Valid {
		return sessionID, true, nil
	}
	a = args(tx.Dialect)
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE _refresh_tokens SET used = %s WHERE hash = %s`, a.Add(Stamp(now)), a.Add(hash)), a.Values...); err != nil {
		return "", false, fmt.Errorf("use refresh token: %w", err)
	}
	return sessionID, false, nil
}

// forUpdate locks the selected rows until the transaction ends, where the
// engine has row locks (SQLite's writer is alone anyway).
func forUpdate(d sqldb.Dialect) string {
	if d == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// FindRecordBy returns the record of c whose field equals value, or
// ErrNotFound.
func FindRecordBy(ctx context.Context, q Querier, d sqldb.Dialect, c *schema.Collection, field string, value any) (*schema.Record, error) {
	ctx = ReadPrimary(ctx) // sign-in: the password set a moment ago counts
	if c.Field(field) == nil {
		return nil, fmt.Errorf("find by %s: no such field in %s", field, c.Name)
	}
	a := args(d)
	recs, _, err := ListRecords(ctx, q, c, ListQuery{Where: `r.` + d.Quote(field) + ` = ` + a.Add(value), Args: a, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNotFound
	}
	return recs[0], nil
}

// ListSessions returns the active sessions of a record, newest first.
func ListSessions(ctx context.Context, q Querier, d sqldb.Dialect, collection, recordID string, now time.Time) ([]*Session, error) {
	a := args(d)
	stmt := fmt.Sprintf(`SELECT id, collection, record_id, created, expires, user_agent, ip FROM _sessions
		WHERE collection = %s AND record_id = %s AND revoked IS NULL AND expires > %s ORDER BY created DESC, id DESC`,
		a.Add(collection), a.Add(recordID), a.Add(Stamp(now)))
	rows, err := q.QueryContext(ctx, stmt, a.Values...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		var s Session
		var created, expires string
		if err := rows.Scan(&s.ID, &s.Collection, &s.RecordID, &created, &expires, &s.UserAgent, &s.IP); err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		s.Created, _ = schema.ParseStoredTime(created)
		s.Expires, _ = schema.ParseStoredTime(expires)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// RevokeSessions ends every active session of a record and returns how
// many it ended.
func RevokeSessions(ctx context.Context, tx *Tx, collection, recordID string, now time.Time) (int64, error) {
	a := args(tx.Dialect)
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE _sessions SET revoked = %s WHERE collection = %s AND record_id = %s AND revoked IS NULL`,
		a.Add(Stamp(now)), a.Add(collection), a.Add(recordID)), a.Values...)
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return res.RowsAffected()
}
