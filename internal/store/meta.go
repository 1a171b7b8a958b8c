package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Stamp is how system tables keep a time: fixed-width UTC text, which
// sorts as the times do, in both engines.
func Stamp(t time.Time) string { return schema.FormatTime(t) }

func args(d sqldb.Dialect) *sqldb.Args { return &sqldb.Args{Dialect: d} }

// Collections loads every collection definition.
func Collections(ctx context.Context, q Querier) ([]*schema.Collection, error) {
	ctx = ReadPrimary(ctx) // the schema never goes back to an older one
	rows, err := q.QueryContext(ctx, `SELECT definition FROM _collections ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("load collections: %w", err)
	}
	defer rows.Close()
	var out []*schema.Collection
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, fmt.Errorf("load collections: %w", err)
		}
		c := new(schema.Collection)
		if err := json.Unmarshal([]byte(def), c); err != nil {
			return nil, fmt.Errorf("load collections: corrupt definition: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutCollection inserts or replaces a collection's definition row.
func PutCollection(ctx context.Context, tx *Tx, c *schema.Collection) error {
	def, err := json.Marshal(c)
	if err != nil {
		return err
	}
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _collections (id, name, definition, created, updated) VALUES (%s, %s, %s, %s, %s)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, definition = excluded.definition, updated = excluded.updated`,
		a.Add(c.ID), a.Add(c.Name), a.Add(string(def)), a.Add(Stamp(c.Created)), a.Add(Stamp(c.Updated)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("save collection %s: %w", c.Name, classifyDDL(tx.Dialect, err))
	}
	return nil
}

// DeleteCollection removes a collection's definition row.
func DeleteCollection(ctx context.Context, tx *Tx, id string) error {
	a := args(tx.Dialect)
	if _, err := tx.ExecContext(ctx, "DELETE FROM _collections WHERE id = "+a.Add(id), a.Values...); err != nil {
		return fmt.Errorf("delete collection: %w", err)
	}
	return nil
}

// Migration is an applied schema change, with what undoes it.
type Migration struct {
	ID      string          `json:"id"`
	Up      json.RawMessage `json:"up"`
	Down    json.RawMessage `json:"down"`
	Applied time.Time       `json:"applied"`
}

// Migrations lists applied migrations in the order they were applied.
func Migrations(ctx context.Context, q Querier) ([]Migration, error) {
	ctx = ReadPrimary(ctx) // decides which migrations run
	rows, err := q.QueryContext(ctx, `SELECT id, up, down, applied FROM _migrations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	defer rows.Close()
	var out []Migration
	for rows.Next() {
		var m Migration
		var up, down, applied string
		if err := rows.Scan(&m.ID, &up, &down, &applied); err != nil {
			return nil, fmt.Errorf("load migrations: %w", err)
		}
		m.Up, m.Down = json.RawMessage(up), json.RawMessage(down)
		m.Applied, _ = schema.ParseStoredTime(applied)
		out = append(out, m)
	}
	return out, rows.Err()
}

// RecordMigration notes that m has been applied.
func RecordMigration(ctx context.Context, tx *Tx, m Migration) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _migrations (id, up, down, applied) VALUES (%s, %s, %s, %s)`,
		a.Add(m.ID), a.Add(string(m.Up)), a.Add(string(m.Down)), a.Add(Stamp(m.Applied)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("record migration %s: %w", m.ID, classifyDDL(tx.Dialect, err))
	}
	return nil
}

// ForgetMigration removes the record of an applied migration.
func ForgetMigration(ctx context.Context, tx *Tx, id string) error {
	a := args(tx.Dialect)
	if _, err := tx.ExecContext(ctx, "DELETE FROM _migrations WHERE id = "+a.Add(id), a.Values...); err != nil {
		return fmt.Errorf("forget migration %s: %w", id, err)
	}
	return nil
}

// Superuser is an account that manages collections.
type Superuser struct {
	ID           string
	Email        string
	PasswordHash string
	Created      time.Time
	Updated      time.Time
}

// FindSuperuser returns the superuser with the given email, or ErrNotFound.
func (db *DB) FindSuperuser(ctx context.Context, email string) (*Superuser, error) {
	a := args(db.dialect)
	row := db.readQ.QueryRowContext(ctx, "SELECT id, email, password_hash, created, updated FROM _superusers WHERE email = "+a.Add(email), a.Values...)
	var u Superuser
	var created, updated string
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("superuser %s: %w", email, ErrNotFound)
		}
		return nil, fmt.Errorf("find superuser: %w", err)
	}
	u.Created, _ = schema.ParseStoredTime(created)
	u.Updated, _ = schema.ParseStoredTime(updated)
	return &u, nil
}

// PutSuperuser creates a superuser, or sets the password of the existing
// one with the same email.
func PutSuperuser(ctx context.Context, tx *Tx, u *Superuser) error {
	a := args(tx.Dialect)
	stmt := fmt.Sprintf(`INSERT INTO _superusers (id, email, password_hash, created, updated) VALUES (%s, %s, %s, %s, %s)
		ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, updated = excluded.updated`,
		a.Add(u.ID), a.Add(u.Email), a.Add(u.PasswordHash), a.Add(Stamp(u.Created)), a.Add(Stamp(u.Updated)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("save superuser: %w", err)
	}
	return nil
}

// CountSuperusers returns how many superusers exist.
func (db *DB) CountSuperusers(ctx context.Context) (int, error) {
	var n int
	err := db.readQ.QueryRowContext(ctx, "SELECT COUNT(*) FROM _superusers").Scan(&n)
	return n, err
}
