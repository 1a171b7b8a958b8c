package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestCreateRuleInMemory: a create rule that reads only the new record and
// the request is decided in memory, before the write; one that follows a
// relation, or that refuses the record, is left to the check on the
// written row, which creates still pass or fail as the rule says.
func TestCreateRuleInMemory(t *testing.T) {
	ctx := context.Background()
	s, err := New(ctx, Options{DB: storetest.Open(t, "sqlite"), Secret: []byte("k"), FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	public := ""
	if _, err := s.CreateCollection(ctx, &schema.Collection{Name: "people", Fields: []*schema.Field{{Name: "name", Type: schema.Text}},
		Rules: schema.Rules{View: &public}}); err != nil {
		t.Fatal(err)
	}
	ann, err := s.Create(WithCaller(ctx, System), "people", map[string]json.RawMessage{"name": json.RawMessage(`"Ann"`)}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.Create(WithCaller(ctx, System), "people", map[string]json.RawMessage{"name": json.RawMessage(`"Bob"`)}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	as := func(id string) *Caller {
		return &Caller{Request: &query.Request{Method: "POST", Now: time.Now(), Query: map[string]string{}, Auth: map[string]any{"id": id, "collection": "people"}}}
	}
	for i, tc := range []struct {
		rule     string
		caller   *Caller
		author   string
		inMemory bool // holdsInMemory answers true
		allowed  bool // the create succeeds
	}{
		{"author = @request.auth.id", as(ann.Record.ID), ann.Record.ID, true, true},
		{"author = @request.auth.id", as(ann.Record.ID), bob.Record.ID, false, false},
		{"author = @request.auth.id", System, bob.Record.ID, true, true},
		{"author.name = 'Ann'", as(bob.Record.ID), ann.Record.ID, false, true},
		{"author.name = 'Ann'", as(ann.Record.ID), bob.Record.ID, false, false},
		{"", as(bob.Record.ID), ann.Record.ID, true, true},
	} {
		name := fmt.Sprintf("notes%d", i)
		rule := tc.rule
		c, err := s.CreateCollection(ctx, &schema.Collection{Name: name, Fields: []*schema.Field{{Name: "author", Type: schema.Relation, Collection: "people"}},
			Rules: schema.Rules{Create: &rule}})
		if err != nil {
			t.Fatal(err)
		}
		body := map[string]json.RawMessage{"author": json.RawMessage(`"` + tc.author + `"`)}
		r := &schema.Record{Collection: c, ID: NewID(), Created: time.Now(), Updated: time.Now(), Values: schema.Values{"author": tc.author}}
		if got := s.holdsInMemory(ctx, c, withBody(tc.caller, body, r.Values), "create", r); got != tc.inMemory {
			t.Errorf("rule %q, author %s: holdsInMemory = %v, want %v", tc.rule, tc.author, got, tc.inMemory)
		}
		_, err = s.Create(WithCaller(ctx, tc.caller), name, body, WriteOptions{})
		if tc.allowed && err != nil {
			t.Errorf("rule %q, author %s: %v", tc.rule, tc.author, err)
		}
		var ae *apperr.Error
		if !tc.allowed && (!errors.As(err, &ae) || ae.Kind != apperr.Forbidden) {
			t.Errorf("rule %q, author %s: %v, want forbidden", tc.rule, tc.author, err)
		}
	}
}
