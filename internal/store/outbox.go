package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// The outbox holds the events of committed changes until the relay has
// published them: a row is written in the transaction of its change, so
// there is an event exactly when the change commits, and deleted once the
// broker has acknowledged it (the broker keeps it for replay). seq orders
// the rows; rows of one record are ordered because their transactions are
// (each locks the record). The table holds only the backlog, so reading
// it in seq order needs no other index.

func outboxDDL(d sqldb.Dialect) []string {
	seq := "seq INTEGER PRIMARY KEY"
	if d == sqldb.Postgres {
		seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS _outbox (
		` + seq + `,
		id TEXT NOT NULL,
		topic TEXT NOT NULL,
		msg_key TEXT NOT NULL,
		data TEXT NOT NULL,
		headers TEXT NOT NULL,
		created TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS _leases (
		name TEXT PRIMARY KEY,
		holder TEXT NOT NULL,
		expires TEXT NOT NULL)`,
	}
}

// OutboxRow is one event waiting to be published.
type OutboxRow struct {
	Seq     int64
	ID      string // event id, the broker's de-duplication key
	Topic   string
	Key     string // ordering key
	Data    []byte
	Headers string // JSON object of message headers, such as traceparent
	Created time.Time
}

// InsertOutbox writes an event in tx.
func InsertOutbox(ctx context.Context, tx *Tx, r *OutboxRow) error {
	a := args(tx.Dialect)
	headers := r.Headers
	if headers == "" {
		headers = "{}"
	}
	stmt := fmt.Sprintf(`INSERT INTO _outbox (id, topic, msg_key, data, headers, created) VALUES (%s, %s, %s, %s, %s, %s)`,
		a.Add(r.ID), a.Add(r.Topic), a.Add(r.Key), a.Add(string(r.Data)), a.Add(headers), a.Add(Stamp(r.Created)))
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert outbox event: %w", err)
	}
	return nil
}

// upgradeOutbox removes what earlier versions kept of published events:
// they marked them in a column sent and pruned them a day later. The
// column stays, unused, so that nodes of the earlier version still work
// during a rolling upgrade.
func upgradeOutbox(ctx context.Context, tx *Tx) error {
	old, err := hasColumn(ctx, tx, "_outbox", "sent")
	if err != nil || !old {
		return err
	}
	for _, stmt := range []string{
		`DELETE FROM _outbox WHERE sent IS NOT NULL`,
		`DROP INDEX IF EXISTS _outbox_unsent`,
		`DROP INDEX IF EXISTS _outbox_sent`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("upgrade the outbox: %w", err)
		}
	}
	return nil
}

// PendingOutbox returns up to limit unsent events, oldest first.
func (db *DB) PendingOutbox(ctx context.Context, limit int) ([]*OutboxRow, error) {
	a := args(db.dialect)
	ctx = ReadPrimary(ctx) // a lagging replica would hand out events already sent
	rows, err := db.readQ.QueryContext(ctx, `SELECT seq, id, topic, msg_key, data, headers, created FROM _outbox ORDER BY seq LIMIT `+a.Add(limit), a.Values...)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []*OutboxRow
	for rows.Next() {
		r := &OutboxRow{}
		var data, created string
		if err := rows.Scan(&r.Seq, &r.ID, &r.Topic, &r.Key, &data, &r.Headers, &created); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		r.Data = []byte(data)
		r.Created, _ = schema.ParseStoredTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// OutboxSent deletes the events with the given seqs, which the broker
// has acknowledged; also, when not nil, runs in the same transaction.
func (db *DB) OutboxSent(ctx context.Context, seqs []int64, also func(*Tx) error) error {
	if len(seqs) == 0 {
		return nil
	}
	return db.Write(ctx, func(tx *Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		a := args(tx.Dialect)
		if _, err := tx.ExecContext(ctx, `DELETE FROM _outbox WHERE `+sqldb.In(a, "seq", seqs), a.Values...); err != nil {
			return fmt.Errorf("delete sent outbox events: %w", err)
		}
		return nil
	})
}

// OutboxBacklog returns how many events wait to be published and when the
// oldest of them was written (zero when none wait).
func (db *DB) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest sql.NullString
	err := db.readQ.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created) FROM _outbox`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox backlog: %w", err)
	}
	var t time.Time
	if oldest.Valid {
		t, _ = schema.ParseStoredTime(oldest.String)
	}
	return n, t, nil
}

// AcquireLease takes or renews the lease called name for holder until
// now+ttl. It reports false when another holder has it and it has not
// expired. Leases let one node among many do a job: relay the outbox, run
// a scheduled task.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	var got bool
	err := db.Write(ctx, func(tx *Tx) error {
		a := args(tx.Dialect)
		stmt := fmt.Sprintf(`INSERT INTO _leases (name, holder, expires) VALUES (%s, %s, %s)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
			WHERE _leases.holder = excluded.holder OR _leases.expires < %s`,
			a.Add(name), a.Add(holder), a.Add(Stamp(now.Add(ttl))), a.Add(Stamp(now)))
		res, err := tx.ExecContext(ctx, stmt, a.Values...)
		if err != nil {
			return fmt.Errorf("acquire lease %s: %w", name, err)
		}
		n, _ := res.RowsAffected()
		got = n == 1
		return nil
	})
	return got, err
}

// ReleaseLease gives up the lease if holder has it.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return db.Write(ctx, func(tx *Tx) error {
		a := args(tx.Dialect)
		_, err := tx.ExecContext(ctx, `DELETE FROM _leases WHERE name = `+a.Add(name)+` AND holder = `+a.Add(holder), a.Values...)
		if err != nil {
			return fmt.Errorf("release lease %s: %w", name, err)
		}
		return nil
	})
}
