// Package audit keeps the append-only log of security events: sign-ins,
// token reuse, session revocations and schema changes, with who did it and
// from where.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Collection describes the audit table in the record layout, so that it
// is listed with the same filter, sort and cursor as any collection. It
// has no rules: superusers only.
var Collection = &schema.Collection{
	Name: "_audit", Type: schema.Base,
	Fields: []*schema.Field{
		{Name: "event", Type: schema.Text},
		{Name: "actor", Type: schema.Text},
		{Name: "actor_collection", Type: schema.Text},
		{Name: "target", Type: schema.Text},
		{Name: "ip", Type: schema.Text},
		{Name: "user_agent", Type: schema.Text},
		{Name: "detail", Type: schema.JSON},
	},
	Indexes: []schema.Index{{Name: "event", Fields: []string{"event"}}, {Name: "created", Fields: []string{"created"}}},
}

// Ensure creates the audit table if it does not exist.
func Ensure(ctx context.Context, db *store.DB) error {
	return db.Write(ctx, func(tx *store.Tx) error {
		if err := store.LockSchema(ctx, tx); err != nil {
			return err
		}
		return store.EnsureTable(ctx, tx, Collection)
	})
}

// Event is one entry.
type Event struct {
	// Event names what happened: "login", "login.failed",
	// "refresh.reused", "sessions.revoked", "collection.update", ...
	Event string
	// Target is what it happened to: a record id, a collection name.
	Target string
	// Detail holds anything else, as JSON.
	Detail any
	// Actor and ActorCollection default to the principal of ctx.
	Actor, ActorCollection string
}

// Append writes e within tx, taking the actor and the client from ctx when
// e does not name them.
func Append(ctx context.Context, tx *store.Tx, e Event) error {
	if e.Actor == "" {
		if p := auth.PrincipalFrom(ctx); p != nil {
			e.Actor, e.ActorCollection = p.ID, p.Collection
			if p.IsSuperuser() {
				e.ActorCollection = "_superusers"
			}
		}
	}
	cl := auth.ClientFrom(ctx)
	var detail any
	if e.Detail != nil {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		detail = json.RawMessage(b)
	}
	now := time.Now().UTC()
	r := &schema.Record{Collection: Collection, ID: uuid.Must(uuid.NewV7()).String(), Created: now, Updated: now, Values: schema.Values{
		"event": e.Event, "actor": e.Actor, "actor_collection": e.ActorCollection, "target": e.Target,
		"ip": cl.IP, "user_agent": cl.UserAgent, "detail": detail,
	}}
	return store.InsertRecord(ctx, tx, Collection, r)
}

// Log writes e in a transaction of its own.
func Log(ctx context.Context, db *store.DB, e Event) error {
	return db.Write(ctx, func(tx *store.Tx) error { return Append(ctx, tx, e) })
}
