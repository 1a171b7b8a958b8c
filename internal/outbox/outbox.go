// Package outbox makes every record change an event that no failure can
// lose: the change's transaction writes the event into the _outbox table,
// so an event exists exactly when its change commits, and the Relay
// publishes the events to the broker, in order for each record, deleting
// each only after the broker has acknowledged it. A relay that dies
// between the ack and the delete publishes the event again on restart with
// the same id; the broker drops such a copy within its de-duplication
// window, and consumers de-duplicate by event id beyond it.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"

	"github.com/strata-dev/strata/internal/jsontext"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/telemetry"
)

// Operations of record events.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// TopicPrefix starts the topic of every record event; the topic of a
// collection's events is TopicPrefix + its name.
const TopicPrefix = "records."

// Topic is the topic of the events of a collection.
func Topic(collection string) string { return TopicPrefix + collection }

// Event is a change to a record as consumers receive it.
type Event struct {
	ID         string `json:"id"`
	Op         string `json:"op"` // create, update or delete
	Collection string `json:"collection"`
	RecordID   string `json:"record_id"`
	// Record is the record after a create or update and before a delete,
	// with hidden fields but without the secrets the system keeps (see
	// schema.Record.AppendInternalJSON): consumers check it against the
	// reader's access rule and render it for them.
	Record json.RawMessage `json:"record"`
	Time   time.Time       `json:"time"`
}

// Writer writes the events of record changes into their transactions.
type Writer struct {
	// Notify, when set, is called after each transaction with an event
	// commits, so a relay on this node publishes it without waiting for
	// its next poll.
	Notify func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Append writes the event of op on r in tx, with the trace context of ctx
// as message headers so the trace continues in every consumer.
func (w *Writer) Append(ctx context.Context, tx *store.Tx, op string, r *schema.Record) error {
	rec, err := r.AppendInternalJSON(nil)
	if err != nil {
		return fmt.Errorf("outbox: encode record: %w", err)
	}
	return w.AppendEncoded(ctx, tx, op, r, rec)
}

// AppendEncoded is Append for a caller that has encoded the record
// already: rec is r.AppendInternalJSON's result. The event holds a copy.
func (w *Writer) AppendEncoded(ctx context.Context, tx *store.Tx, op string, r *schema.Record, rec []byte) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ev := Event{ID: uuid.Must(uuid.NewV7()).String(), Op: op, Collection: r.Collection.Name, RecordID: r.ID,
		Record: rec, Time: now().UTC()}
	data := ev.appendJSON(make([]byte, 0, len(rec)+192))
	headers := "{}"
	carrier := propagation.MapCarrier{}
	telemetry.Propagator.Inject(ctx, carrier)
	if len(carrier) > 0 {
		b, _ := json.Marshal(map[string]string(carrier))
		headers = string(b)
	}
	row := &store.OutboxRow{ID: ev.ID, Topic: Topic(ev.Collection), Key: ev.Collection + "/" + ev.RecordID,
		Data: data, Headers: headers, Created: ev.Time}
	if err := store.InsertOutbox(ctx, tx, row); err != nil {
		return err
	}
	if w.Notify != nil {
		tx.AfterCommit(w.Notify)
	}
	return nil
}

// appendJSON appends ev as JSON, which decodes to the same Event as
// json.Marshal's encoding (a third of an event's cost, by reflection).
func (ev *Event) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsontext.AppendString(b, ev.ID)
	b = append(b, `,"op":`...)
	b = jsontext.AppendString(b, ev.Op)
	b = append(b, `,"collection":`...)
	b = jsontext.AppendString(b, ev.Collection)
	b = append(b, `,"record_id":`...)
	b = jsontext.AppendString(b, ev.RecordID)
	b = append(b, `,"record":`...)
	if len(ev.Record) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, ev.Record...)
	}
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}
