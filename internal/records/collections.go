package records

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
)

// Op is one schema change. A migration is a list of them to apply (up) and
// the list that undoes them (down).
type Op struct {
	// Op is "create", "update" or "delete".
	Op string `json:"op"`
	// Collection is the full definition to create, or to change the
	// collection of the same ID into.
	Collection *schema.Collection `json:"collection,omitempty"`
	// Name is the collection to delete.
	Name string `json:"name,omitempty"`
}

// CollectionPatch is a partial update of a collection: fields and indexes
// given replace the current lists. Fields are matched to existing ones by
// id, or by name when the id is left out; an existing field missing from
// the list is dropped, a new one is added.
type CollectionPatch struct {
	Name    *string                  `json:"name,omitempty"`
	Type    *string                  `json:"type,omitempty"`
	Fields  []*schema.Field          `json:"fields,omitempty"`
	Indexes *[]schema.Index          `json:"indexes,omitempty"`
	Rules   *schema.Rules            `json:"rules,omitempty"`
	OAuth2  *[]schema.OAuth2Provider `json:"oauth2,omitempty"`
	// Cache replaces the cache setting; {"policy": "none"} turns caching
	// off.
	Cache *schema.Cache `json:"cache,omitempty"`
	// RateLimit replaces the collection's rate limit; "" removes it.
	RateLimit *string `json:"rate_limit,omitempty"`
}

// CreateCollection creates a collection from its definition.
func (s *Service) CreateCollection(ctx context.Context, in *schema.Collection) (*schema.Collection, error) {
	c := clone(in)
	now := s.now().UTC().Truncate(time.Millisecond)
	c.ID, c.Created, c.Updated = NewID(), now, now
	var ve schema.ValidationError
	for i, f := range c.Fields {
		if f == nil {
			continue
		}
		f.ID = newFieldID()
		if f.System {
			ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("fields[%d].system", i), Code: "read_only", Message: "system fields are added by the server"})
		}
	}
	if c.Type == schema.Auth {
		for _, sf := range schema.AuthFields() {
			if c.Field(sf.Name) != nil {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: "fields", Code: "reserved", Message: fmt.Sprintf("%s is a system field of auth collections", sf.Name)})
				continue
			}
			sf.ID = newFieldID()
			c.Fields = append(c.Fields, sf)
		}
	}
	if len(ve.Errors) > 0 {
		return nil, apperr.FromValidation(&ve, "the collection definition is invalid")
	}
	normalizeIndexes(c)
	up := []Op{{Op: "create", Collection: c}}
	down := []Op{{Op: "delete", Name: c.Name}}
	if err := s.migrate(ctx, "create", c.Name, up, down); err != nil {
		return nil, err
	}
	return s.lookup(c.Name), nil
}

// UpdateCollection changes a collection's fields and indexes.
func (s *Service) UpdateCollection(ctx context.Context, name string, p *CollectionPatch) (*schema.Collection, error) {
	old, err := s.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if p.Name != nil && *p.Name != old.Name {
		return nil, apperr.New(apperr.Invalid, "a collection cannot be renamed; create a new one and copy the records")
	}
	if p.Type != nil && schema.CollectionType(*p.Type) != old.Type {
		return nil, apperr.New(apperr.Invalid, "a collection's type cannot be changed")
	}
	next := clone(old)
	next.Updated = s.now().UTC().Truncate(time.Millisecond)
	if !next.Updated.After(old.Updated) {
		// Cache keys hold the definition's version, its Updated time:
		// every change must move it.
		next.Updated = old.Updated.Add(time.Millisecond)
	}
	if p.Fields != nil {
		var ve schema.ValidationError
		next.Fields = nil
		for i, f := range p.Fields {
			if f == nil {
				continue
			}
			f := *f
			var prev *schema.Field
			switch {
			case f.ID != "":
				if prev = old.FieldByID(f.ID); prev == nil {
					ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("fields[%d].id", i), Code: "unknown_field", Message: fmt.Sprintf("%s has no field with id %q", name, f.ID)})
					continue
				}
			default:
				if prev = old.Field(f.Name); prev != nil {
					f.ID = prev.ID
				} else {
					f.ID = newFieldID()
				}
			}
			if prev != nil && prev.System {
				if f.Name != prev.Name || f.Type != prev.Type {
					ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("fields[%d]", i), Code: "system_field", Message: fmt.Sprintf("system field %s cannot be renamed or retyped", prev.Name)})
					continue
				}
				f = *prev // its settings belong to the server
			} else if f.System {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("fields[%d].system", i), Code: "read_only", Message: "system fields are added by the server"})
				continue
			}
			if prev != nil && (prev.Type != f.Type || prev.Multiple != f.Multiple) {
				ve.Errors = append(ve.Errors, schema.FieldError{Field: fmt.Sprintf("fields[%d].type", i), Code: "type_change",
					Message: fmt.Sprintf("field %s cannot change from %s to %s; add a new field instead", prev.Name, describe(prev), describe(&f))})
			}
			next.Fields = append(next.Fields, &f)
		}
		// System fields stay even when the list leaves them out.
		for _, f := range old.Fields {
			if f.System && next.FieldByID(f.ID) == nil {
				sf := *f
				next.Fields = append(next.Fields, &sf)
			}
		}
		if len(ve.Errors) > 0 {
			return nil, apperr.FromValidation(&ve, "the collection change is invalid")
		}
	}
	if p.Rules != nil {
		next.Rules = *p.Rules
	}
	if p.OAuth2 != nil {
		next.OAuth2 = *p.OAuth2
	}
	if p.RateLimit != nil {
		next.RateLimit = *p.RateLimit
	}
	if p.Cache != nil {
		next.Cache = p.Cache
	}
	if p.Indexes != nil {
		next.Indexes = *p.Indexes
	}
	normalizeIndexes(next)
	up := []Op{{Op: "update", Collection: next}}
	down := []Op{{Op: "update", Collection: old}}
	if err := s.migrate(ctx, "update", name, up, down); err != nil {
		return nil, err
	}
	return s.lookup(name), nil
}

func describe(f *schema.Field) string {
	if f.Multiple {
		return "multiple " + string(f.Type)
	}
	return string(f.Type)
}

// DeleteCollection drops a collection and all its records.
func (s *Service) DeleteCollection(ctx context.Context, name string) error {
	old, err := s.Collection(ctx, name)
	if err != nil {
		return err
	}
	up := []Op{{Op: "delete", Name: name}}
	down := []Op{{Op: "create", Collection: old}}
	return s.migrate(ctx, "delete", name, up, down)
}

func normalizeIndexes(c *schema.Collection) {
	for i := range c.Indexes {
		if c.Indexes[i].Name == "" {
			c.Indexes[i].Name = strings.Join(c.Indexes[i].Fields, "_")
		}
	}
}

func newFieldID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "f" + string(b)
}

// applyOps applies ops inside tx to the registry reg, which it updates.
func applyOps(ctx context.Context, tx *store.Tx, reg map[string]*schema.Collection, ops []Op) error {
	lookup := func(name string) *schema.Collection { return reg[name] }
	for _, op := range ops {
		switch op.Op {
		case "create":
			c := op.Collection
			if c == nil {
				return apperr.New(apperr.Invalid, "create needs a collection")
			}
			c = clone(c)
			if c.Type == "" {
				c.Type = schema.Base
			}
			if err := c.Validate(func(n string) *schema.Collection {
				if n == c.Name {
					return c
				}
				return lookup(n)
			}); err != nil {
				return apperr.FromValidation(err, "the collection definition is invalid")
			}
			if err := checkRules(c, withSelf(lookup, c), authCollections(reg, c)); err != nil {
				return err
			}
			if reg[c.Name] != nil {
				return apperr.New(apperr.Conflict, "collection %q already exists", c.Name)
			}
			if err := store.CreateTable(ctx, tx, c); err != nil {
				return err
			}
			if err := store.PutCollection(ctx, tx, c); err != nil {
				return err
			}
			reg[c.Name] = c
		case "update":
			next := op.Collection
			if next == nil {
				return apperr.New(apperr.Invalid, "update needs a collection")
			}
			next = clone(next)
			old := reg[next.Name]
			if old == nil || old.ID != next.ID {
				return apperr.New(apperr.NotFound, "collection %q (id %s) does not exist", next.Name, next.ID)
			}
			if err := next.Validate(lookup); err != nil {
				return apperr.FromValidation(err, "the collection change is invalid")
			}
			if err := checkRules(next, withSelf(lookup, next), authCollections(reg, next)); err != nil {
				return err
			}
			if err := store.AlterTable(ctx, tx, old, next); err != nil {
				return ddlErr(err)
			}
			if err := store.PutCollection(ctx, tx, next); err != nil {
				return err
			}
			reg[next.Name] = next
		case "delete":
			old := reg[op.Name]
			if old == nil {
				return apperr.New(apperr.NotFound, "collection %q does not exist", op.Name)
			}
			for _, other := range reg {
				for _, f := range other.Fields {
					if f.Type == schema.Relation && f.Collection == op.Name && other.Name != op.Name {
						return apperr.New(apperr.Conflict, "collection %s is referenced by %s.%s; remove that field first", op.Name, other.Name, f.Name)
					}
				}
			}
			if err := store.DropTable(ctx, tx, old); err != nil {
				return err
			}
			if err := store.DeleteCollection(ctx, tx, old.ID); err != nil {
				return err
			}
			delete(reg, op.Name)
		default:
			return apperr.New(apperr.Invalid, "unknown migration op %q (want create, update or delete)", op.Op)
		}
	}
	return nil
}

// ddlErr explains a schema change that the stored records refuse.
func ddlErr(err error) error {
	if ue, ok := asUnique(err); ok {
		return &apperr.Error{Kind: apperr.Conflict, Msg: "existing records have duplicate values; the unique constraint cannot be added", Err: ue,
			Fields: []schema.FieldError{{Field: ue.Field, Code: "unique", Message: "existing records share values of " + ue.Field}}}
	}
	return err
}

// migrate applies a schema change made through the service: it runs the up
// ops and records the migration in one transaction, publishes the new
// registry, and writes the migration file.
func (s *Service) migrate(ctx context.Context, op, collection string, up, down []Op) error {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if err := s.reload(ctx); err != nil {
		return err
	}
	now := s.now().UTC()
	m := File{ID: MigrationID(now, op+"_"+collection), Up: up, Down: down}
	reg := maps.Clone(s.registry())
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := applyOps(ctx, tx, reg, up); err != nil {
			return err
		}
		if err := audit.Append(ctx, tx, audit.Event{Event: "collection." + op, Target: collection,
			Detail: map[string]any{"migration": m.ID, "up": up}}); err != nil {
			return err
		}
		return recordMigration(ctx, tx, m, now)
	})
	if err != nil {
		return err
	}
	s.cols.Store(&reg)
	if s.migDir != "" {
		if err := m.Write(s.migDir); err != nil {
			s.log.Error("schema changed but its migration file was not written; run strata migrate export", "migration", m.ID, "err", err)
		}
	}
	return nil
}

// withSelf resolves c's own name to c, so that a new or changed
// collection's rules can follow relations to itself.
func withSelf(lookup func(string) *schema.Collection, c *schema.Collection) func(string) *schema.Collection {
	return func(name string) *schema.Collection {
		if name == c.Name {
			return c
		}
		return lookup(name)
	}
}

// authCollections lists the auth collections of reg, with c in place of
// the one of its name.
func authCollections(reg map[string]*schema.Collection, c *schema.Collection) []*schema.Collection {
	var out []*schema.Collection
	for name, a := range reg {
		if name == c.Name {
			a = c
		}
		if a.Type == schema.Auth {
			out = append(out, a)
		}
	}
	if reg[c.Name] == nil && c.Type == schema.Auth {
		out = append(out, c)
	}
	return out
}
