package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// The tables. Timestamps are fixed-width UTC text (schema.TimeLayout) as in
// every system table; booleans are 0 or 1 on both engines.
//
// _webhooks.secret holds the signing secret as it was given or generated:
// the signer needs the key itself, so it cannot be stored hashed. It is
// returned once, by the create, and never listed.
//
// _webhooks.failures counts the delivery attempts that failed since the
// last success (or since the endpoint was last enabled).

func ddl(d sqldb.Dialect) []string {
	id := "id INTEGER PRIMARY KEY"
	if d == sqldb.Postgres {
		id = "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS _webhooks (
		id TEXT PRIMARY KEY,
		url TEXT NOT NULL,
		events TEXT NOT NULL,
		secret TEXT NOT NULL,
		enabled INTEGER NOT NULL,
		description TEXT NOT NULL,
		failures INTEGER NOT NULL,
		disabled_reason TEXT NOT NULL,
		created TEXT NOT NULL,
		updated TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS _webhooks_enabled ON _webhooks (enabled)`,
		`CREATE TABLE IF NOT EXISTS _webhook_deliveries (
		` + id + `,
		webhook_id TEXT NOT NULL,
		event_id TEXT NOT NULL,
		event_type TEXT NOT NULL,
		attempt INTEGER NOT NULL,
		status INTEGER NOT NULL,
		success INTEGER NOT NULL,
		latency_ms BIGINT NOT NULL,
		response TEXT NOT NULL,
		error TEXT NOT NULL,
		created TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS _webhook_deliveries_webhook ON _webhook_deliveries (webhook_id, id)`,
		`CREATE INDEX IF NOT EXISTS _webhook_deliveries_success ON _webhook_deliveries (webhook_id, event_id) WHERE success = 1`,
		`CREATE INDEX IF NOT EXISTS _webhook_deliveries_created ON _webhook_deliveries (created)`,
	}
}

// migrate creates the tables, one node at a time.
func migrate(ctx context.Context, db *store.DB) error {
	if err := db.CreateTables(ctx, ddl(db.Dialect())); err != nil {
		return fmt.Errorf("webhooks: create tables: %w", err)
	}
	return nil
}

func parseStamp(s string) time.Time {
	t, _ := schema.ParseStoredTime(s)
	return t
}

func newArgs(d sqldb.Dialect) *sqldb.Args { return &sqldb.Args{Dialect: d} }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

type scanner interface{ Scan(dest ...any) error }

const endpointCols = `id, url, events, secret, enabled, description, failures, disabled_reason, created, updated`

func scanEndpoint(r scanner) (*Endpoint, error) {
	e := &Endpoint{}
	var events, created, updated string
	var enabled int
	if err := r.Scan(&e.ID, &e.URL, &events, &e.secret, &enabled, &e.Description, &e.Failures, &e.DisabledReason, &created, &updated); err != nil {
		return nil, err
	}
	e.Enabled = enabled != 0
	e.Created, e.Updated = parseStamp(created), parseStamp(updated)
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, fmt.Errorf("webhook %s: events: %w", e.ID, err)
	}
	return e, nil
}

func insertEndpoint(ctx context.Context, tx *store.Tx, e *Endpoint) error {
	events, err := json.Marshal(e.Events)
	if err != nil {
		return err
	}
	a := newArgs(tx.Dialect)
	stmt := `INSERT INTO _webhooks (` + endpointCols + `) VALUES (` + a.Add(e.ID) + `, ` + a.Add(e.URL) + `, ` + a.Add(string(events)) + `, ` +
		a.Add(e.secret) + `, ` + a.Add(boolInt(e.Enabled)) + `, ` + a.Add(e.Description) + `, ` + a.Add(e.Failures) + `, ` +
		a.Add(e.DisabledReason) + `, ` + a.Add(store.Stamp(e.Created)) + `, ` + a.Add(store.Stamp(e.Updated)) + `)`
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("insert webhook: %w", err)
	}
	return nil
}

// updateEndpoint writes every mutable column of e.
func updateEndpoint(ctx context.Context, tx *store.Tx, e *Endpoint) error {
	events, err := json.Marshal(e.Events)
	if err != nil {
		return err
	}
	a := newArgs(tx.Dialect)
	stmt := `UPDATE _webhooks SET url = ` + a.Add(e.URL) + `, events = ` + a.Add(string(events)) + `, enabled = ` + a.Add(boolInt(e.Enabled)) +
		`, description = ` + a.Add(e.Description) + `, failures = ` + a.Add(e.Failures) + `, disabled_reason = ` + a.Add(e.DisabledReason) +
		`, updated = ` + a.Add(store.Stamp(e.Updated)) + ` WHERE id = ` + a.Add(e.ID)
	if _, err := tx.ExecContext(ctx, stmt, a.Values...); err != nil {
		return fmt.Errorf("update webhook %s: %w", e.ID, err)
	}
	return nil
}

// getEndpoint returns an endpoint, locking its row on PostgreSQL when lock
// is set; ErrNotFound (kind NotFound) when there is none.
func getEndpoint(ctx context.Context, q store.Querier, d sqldb.Dialect, id string, lock bool) (*Endpoint, error) {
	a := newArgs(d)
	stmt := `SELECT ` + endpointCols + ` FROM _webhooks WHERE id = ` + a.Add(id)
	if lock && d == sqldb.Postgres {
		stmt += ` FOR UPDATE`
	}
	e, err := scanEndpoint(q.QueryRowContext(ctx, stmt, a.Values...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", id, err)
	}
	return e, nil
}

func listEndpoints(ctx context.Context, q store.Querier, enabledOnly bool) ([]*Endpoint, error) {
	stmt := `SELECT ` + endpointCols + ` FROM _webhooks`
	if enabledOnly {
		stmt += ` WHERE enabled = 1`
	}
	rows, err := q.QueryContext(ctx, stmt+` ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	defer rows.Close()
	out := []*Endpoint{}
	for rows.Next() {
		e, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhooks: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const deliveryCols = `id, webhook_id, event_id, event_type, attempt, status, success, latency_ms, response, error, created`

func scanDelivery(r scanner) (*Delivery, error) {
	d := &Delivery{}
	var success int
	var created string
	if err := r.Scan(&d.ID, &d.Webhook, &d.Event, &d.Type, &d.Attempt, &d.Status, &success, &d.LatencyMS, &d.Response, &d.Error, &created); err != nil {
		return nil, err
	}
	d.Success = success != 0
	d.Created = parseStamp(created)
	return d, nil
}

// insertDelivery logs an attempt and sets d.ID.
func insertDelivery(ctx context.Context, tx *store.Tx, d *Delivery) error {
	a := newArgs(tx.Dialect)
	stmt := `INSERT INTO _webhook_deliveries (webhook_id, event_id, event_type, attempt, status, success, latency_ms, response, error, created) VALUES (` +
		a.Add(d.Webhook) + `, ` + a.Add(d.Event) + `, ` + a.Add(d.Type) + `, ` + a.Add(d.Attempt) + `, ` + a.Add(d.Status) + `, ` +
		a.Add(boolInt(d.Success)) + `, ` + a.Add(d.LatencyMS) + `, ` + a.Add(d.Response) + `, ` + a.Add(d.Error) + `, ` +
		a.Add(store.Stamp(d.Created)) + `) RETURNING id`
	if err := tx.QueryRowContext(ctx, stmt, a.Values...).Scan(&d.ID); err != nil {
		return fmt.Errorf("log webhook delivery: %w", err)
	}
	return nil
}

func listDeliveries(ctx context.Context, q store.Querier, d sqldb.Dialect, webhook string, limit int) ([]*Delivery, error) {
	a := newArgs(d)
	rows, err := q.QueryContext(ctx, `SELECT `+deliveryCols+` FROM _webhook_deliveries WHERE webhook_id = `+a.Add(webhook)+
		` ORDER BY id DESC LIMIT `+a.Add(limit), a.Values...)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	out := []*Delivery{}
	for rows.Next() {
		dl, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list webhook deliveries: %w", err)
		}
		out = append(out, dl)
	}
	return out, rows.Err()
}

// delivered reports whether an event already reached an endpoint.
func delivered(ctx context.Context, q store.Querier, d sqldb.Dialect, webhook, event string) (bool, error) {
	a := newArgs(d)
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM _webhook_deliveries WHERE webhook_id = `+a.Add(webhook)+
		` AND event_id = `+a.Add(event)+` AND success = 1 LIMIT 1`, a.Values...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check earlier deliveries: %w", err)
	}
	return true, nil
}
