package records

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
)

// Caller is who runs an operation: a superuser, who passes every rule, or
// anyone else, whose access the collection's rules decide.
type Caller struct {
	Superuser bool
	// Principal, when set, bounds the caller by the scopes of its API key.
	Principal *auth.Principal
	// Request gives the rules their @request variables; Request.Auth is
	// nil for an anonymous caller.
	Request *query.Request
}

// System is the caller of operations Strata runs for itself.
var System = &Caller{Superuser: true}

type callerKey struct{}

// WithCaller returns ctx carrying c. Operations on a context without a
// caller run as System: the API sets the caller of every request.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok && c != nil {
		return c
	}
	return System
}

// ruleFor returns the rule of op, or a Forbidden error when the caller may
// not run op at all. The rule is "" when nothing restricts the caller.
func ruleFor(c *schema.Collection, caller *Caller, op string) (string, error) {
	if !caller.Principal.Allows(c.Name, op) {
		return "", apperr.New(apperr.Forbidden, "the API key's scopes do not allow %s on %s", op, c.Name)
	}
	if caller.Superuser {
		return "", nil
	}
	var rule *string
	c.Rules.Each(func(name string, r *string) {
		if name == op {
			rule = r
		}
	})
	if rule == nil {
		return "", apperr.New(apperr.Forbidden, "only superusers may %s records of %s", op, c.Name)
	}
	return strings.TrimSpace(*rule), nil
}

// ruleSQL compiles the rule of op for caller into a condition on the
// collection's table (alias store.Alias), with its values in args. It
// returns "" when nothing restricts the caller.
func (s *Service) ruleSQL(c *schema.Collection, caller *Caller, op string, args *sqldb.Args) (string, error) {
	rule, err := ruleFor(c, caller, op)
	if err != nil || rule == "" {
		return "", err
	}
	e, err := s.parsedRule(rule)
	if err != nil {
		return "", fmt.Errorf("%s rule of %s: %w", op, c.Name, err)
	}
	env := &query.Env{Dialect: args.Dialect, Collection: c, Alias: store.Alias, Lookup: s.lookup, Request: caller.Request}
	where, err := env.Where(e, args)
	if err != nil {
		// A rule that fits the schema when saved can still fail for one
		// caller, such as a field the caller's auth collection lacks: deny.
		s.log.Debug("rule does not apply to caller", "collection", c.Name, "op", op, "err", err)
		return "FALSE", nil
	}
	return where, nil
}

// checkRules type-checks every rule of c when it is saved. A rule may use
// @request.auth.<field> when some auth collection has the field.
func checkRules(c *schema.Collection, lookup func(string) *schema.Collection, auths []*schema.Collection) error {
	var ve schema.ValidationError
	c.Rules.Each(func(op string, rule *string) {
		if rule == nil || strings.TrimSpace(*rule) == "" {
			return
		}
		err := query.CheckRule(*rule, c, lookup, nil)
		for _, a := range auths {
			if err == nil {
				break
			}
			err = query.CheckRule(*rule, c, lookup, a)
		}
		if err != nil {
			ve.Errors = append(ve.Errors, schema.FieldError{Field: "rules." + op, Code: "invalid_rule", Message: err.Error()})
		}
	})
	if len(ve.Errors) > 0 {
		return apperr.FromValidation(&ve, "a rule of the collection is invalid")
	}
	return nil
}

// visible refuses paths that reach a hidden field, for callers who are not
// superusers: they must not filter or sort by what they cannot see.
func (s *Service) visible(c *schema.Collection, caller *Caller, paths []string) error {
	if caller.Superuser {
		return nil
	}
	for _, p := range paths {
		if strings.HasPrefix(p, "@") {
			continue
		}
		col := c
		for _, seg := range strings.Split(p, ".") {
			if col == nil || !col.HasFields() {
				break
			}
			f := col.Field(seg)
			if f == nil {
				break
			}
			if f.Hidden {
				return &apperr.Error{Kind: apperr.Invalid, Msg: fmt.Sprintf("invalid filter or sort: %q is not a field of %s", p, c.Name),
					Fields: []schema.FieldError{{Field: "filter", Code: "unknown_field", Message: p + " is not a field"}}}
			}
			if f.Type != schema.Relation {
				break
			}
			col = s.lookup(f.Collection)
		}
	}
	return nil
}

// paths lists the field paths an expression compares.
func paths(e query.Expr) []string {
	var out []string
	var walk func(query.Expr)
	walk = func(e query.Expr) {
		switch e := e.(type) {
		case *query.Logical:
			walk(e.X)
			walk(e.Y)
		case *query.Not:
			walk(e.X)
		case *query.Compare:
			out = append(out, e.Path)
		}
	}
	if e != nil {
		walk(e)
	}
	return out
}

// checkProtected refuses a body that writes protected fields, unless the
// caller is a superuser.
func checkProtected(c *schema.Collection, caller *Caller, body map[string]json.RawMessage) error {
	if caller.Superuser {
		return nil
	}
	var ve schema.ValidationError
	for _, f := range c.Fields {
		if _, ok := body[f.Name]; ok && f.Protected {
			ve.Errors = append(ve.Errors, schema.FieldError{Field: f.Name, Code: "read_only", Message: f.Name + " can be written by superusers only"})
		}
	}
	if len(ve.Errors) > 0 {
		return apperr.FromValidation(&ve, "the record is invalid")
	}
	return nil
}
