package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/store"
)

// Endpoint is a registered receiver of webhooks.
type Endpoint struct {
	ID     string        `json:"id"`
	URL    string        `json:"url"`
	Events []EventFilter `json:"events"`
	// Secret is set only in the result of Create: the only time it is
	// shown.
	Secret      string `json:"secret,omitempty"`
	Enabled     bool   `json:"enabled"`
	Description string `json:"description"`
	// Failures counts the delivery attempts that failed in a row.
	Failures int `json:"failures"`
	// DisabledReason says why the service disabled the endpoint; empty
	// when it is enabled or an operator disabled it.
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`

	secret string // the stored signing secret
}

// EventFilter selects record events: those of a collection ("*" for every
// collection) whose operation is in Ops ("create", "update", "delete", or
// "*" for all), and, when Filter is set, whose record matches it (the
// filter language of list requests; only with a named collection).
type EventFilter struct {
	Collection string   `json:"collection"`
	Ops        []string `json:"ops"`
	Filter     string   `json:"filter,omitempty"`
}

// Any matches every collection or operation in an EventFilter.
const Any = "*"

var ops = []string{outbox.OpCreate, outbox.OpUpdate, outbox.OpDelete}

// Limits of an endpoint's fields.
const (
	maxEvents      = 100
	maxDescription = 1000
	maxFilter      = 4096
)

// CreateParams describe a new endpoint.
type CreateParams struct {
	URL    string        `json:"url"`
	Events []EventFilter `json:"events"`
	// Secret signs the deliveries; empty generates one. A given secret
	// must be "whsec_" and the base64 of 24 to 64 bytes.
	Secret string `json:"secret"`
	// Enabled defaults to true.
	Enabled     *bool  `json:"enabled"`
	Description string `json:"description"`
}

// UpdateParams change an endpoint; nil fields stay as they are.
// Enabling a disabled endpoint resets its failure count.
type UpdateParams struct {
	URL         *string        `json:"url"`
	Events      *[]EventFilter `json:"events"`
	Enabled     *bool          `json:"enabled"`
	Description *string        `json:"description"`
}

// Create registers an endpoint and returns it with its secret, which no
// later read shows. Invalid parameters return Invalid errors that say
// what is wrong.
func (s *Service) Create(ctx context.Context, p CreateParams) (*Endpoint, error) {
	u, err := s.checkURL(p.URL)
	if err != nil {
		return nil, err
	}
	events, err := s.checkEvents(ctx, p.Events)
	if err != nil {
		return nil, err
	}
	if err := checkDescription(p.Description); err != nil {
		return nil, err
	}
	secret := p.Secret
	if secret == "" {
		secret = GenerateSecret()
	} else if _, err := secretKey(secret); err != nil {
		return nil, invalid("secret: %v", err)
	}
	now := time.Now().UTC()
	e := &Endpoint{ID: uuid.Must(uuid.NewV7()).String(), URL: u, Events: events, Enabled: p.Enabled == nil || *p.Enabled,
		Description: p.Description, Created: now, Updated: now, secret: secret}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := insertEndpoint(ctx, tx, e); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "webhook.created", Target: e.ID, Detail: map[string]any{"url": e.URL}})
	})
	if err != nil {
		return nil, err
	}
	out := *e
	out.Secret = secret
	return &out, nil
}

// Get returns an endpoint, without its secret; ErrNotFound (kind NotFound)
// when there is none.
func (s *Service) Get(ctx context.Context, id string) (*Endpoint, error) {
	return getEndpoint(ctx, s.db.Reader(), s.db.Dialect(), id, false)
}

// List returns every endpoint, oldest first, without their secrets.
func (s *Service) List(ctx context.Context) ([]*Endpoint, error) {
	return listEndpoints(ctx, s.db.Reader(), false)
}

// Update changes an endpoint. It returns ErrNotFound, or Invalid errors.
func (s *Service) Update(ctx context.Context, id string, p UpdateParams) (*Endpoint, error) {
	var url string
	var events []EventFilter
	var err error
	if p.URL != nil {
		if url, err = s.checkURL(*p.URL); err != nil {
			return nil, err
		}
	}
	if p.Events != nil {
		if events, err = s.checkEvents(ctx, *p.Events); err != nil {
			return nil, err
		}
	}
	if p.Description != nil {
		if err := checkDescription(*p.Description); err != nil {
			return nil, err
		}
	}
	var out *Endpoint
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		e, err := getEndpoint(ctx, tx, tx.Dialect, id, true)
		if err != nil {
			return err
		}
		var changed []string
		if p.URL != nil && url != e.URL {
			e.URL = url
			changed = append(changed, "url")
		}
		if p.Events != nil {
			e.Events = events
			changed = append(changed, "events")
		}
		if p.Description != nil {
			e.Description = *p.Description
			changed = append(changed, "description")
		}
		if p.Enabled != nil && *p.Enabled != e.Enabled {
			e.Enabled = *p.Enabled
			changed = append(changed, "enabled")
			if e.Enabled {
				e.Failures, e.DisabledReason = 0, ""
			}
		}
		out = e
		if len(changed) == 0 {
			return nil
		}
		e.Updated = time.Now().UTC()
		if err := updateEndpoint(ctx, tx, e); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Event{Event: "webhook.updated", Target: e.ID,
			Detail: map[string]any{"changed": changed, "url": e.URL, "enabled": e.Enabled}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes an endpoint and its delivery log. Deliveries still queued
// for it find it gone and end without sending. It returns ErrNotFound.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.db.Write(ctx, func(tx *store.Tx) error {
		a := newArgs(tx.Dialect)
		res, err := tx.ExecContext(ctx, `DELETE FROM _webhooks WHERE id = `+a.Add(id), a.Values...)
		if err != nil {
			return fmt.Errorf("delete webhook %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound(id)
		}
		a = newArgs(tx.Dialect)
		if _, err := tx.ExecContext(ctx, `DELETE FROM _webhook_deliveries WHERE webhook_id = `+a.Add(id), a.Values...); err != nil {
			return fmt.Errorf("delete webhook %s deliveries: %w", id, err)
		}
		return audit.Append(ctx, tx, audit.Event{Event: "webhook.deleted", Target: id})
	})
}

// Deliveries returns the latest delivery attempts to an endpoint, newest
// first: limit of them, 1 to 500 (0 means 50). It returns ErrNotFound.
func (s *Service) Deliveries(ctx context.Context, id string, limit int) ([]*Delivery, error) {
	if limit < 0 || limit > 500 {
		return nil, invalid("limit %d is outside 1-500", limit)
	}
	if limit == 0 {
		limit = 50
	}
	if _, err := s.Get(ctx, id); err != nil {
		return nil, err
	}
	return listDeliveries(ctx, s.db.Reader(), s.db.Dialect(), id, limit)
}

func (s *Service) checkURL(raw string) (string, error) {
	u, err := s.guard.CheckURL(raw)
	if err != nil {
		return "", &apperr.Error{Kind: apperr.Invalid, Msg: "url: " + err.Error(), Err: err}
	}
	return u.String(), nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return invalid("description: longer than %d bytes", maxDescription)
	}
	return nil
}

// checkEvents validates event filters against the current collections
// and returns them normalized: operations deduplicated and in a fixed
// order, "*" alone when it is among them.
func (s *Service) checkEvents(ctx context.Context, in []EventFilter) ([]EventFilter, error) {
	if len(in) == 0 {
		return nil, invalid(`events: list at least one, such as {"collection": "*", "ops": ["*"]}`)
	}
	if len(in) > maxEvents {
		return nil, invalid("events: at most %d", maxEvents)
	}
	out := make([]EventFilter, len(in))
	for i, ev := range in {
		at := fmt.Sprintf("events[%d]", i)
		ev.Collection = strings.TrimSpace(ev.Collection)
		ev.Filter = strings.TrimSpace(ev.Filter)
		switch {
		case ev.Collection == "":
			return nil, invalid("%s.collection: name a collection, or \"*\" for all", at)
		case len(ev.Filter) > maxFilter:
			return nil, invalid("%s.filter: longer than %d bytes", at, maxFilter)
		case ev.Collection == Any && ev.Filter != "":
			return nil, invalid("%s.filter: a filter needs a named collection, not \"*\"", at)
		}
		if len(ev.Ops) == 0 {
			return nil, invalid(`%s.ops: list at least one of "create", "update", "delete", or "*"`, at)
		}
		var norm []string
		for _, op := range ev.Ops {
			if op != Any && !slices.Contains(ops, op) {
				return nil, invalid(`%s.ops: %q is not "create", "update", "delete" or "*"`, at, op)
			}
			if !slices.Contains(norm, op) {
				norm = append(norm, op)
			}
		}
		if slices.Contains(norm, Any) {
			norm = []string{Any}
		}
		slices.SortFunc(norm, func(a, b string) int { return slices.Index(ops, a) - slices.Index(ops, b) })
		ev.Ops = norm
		if ev.Collection != Any {
			if _, err := s.recs.Watch(ctx, records.System, ev.Collection, "", ev.Filter); err != nil {
				if apperr.KindOf(err) == apperr.NotFound {
					return nil, &apperr.Error{Kind: apperr.Invalid, Msg: fmt.Sprintf("%s.collection: no collection named %q", at, ev.Collection), Err: err}
				}
				var ae *apperr.Error
				if errors.As(err, &ae) {
					return nil, &apperr.Error{Kind: apperr.Invalid, Msg: at + ".filter: " + ae.Msg, Err: err}
				}
				return nil, err
			}
		}
		out[i] = ev
	}
	return out, nil
}
