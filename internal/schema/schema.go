// Package schema defines collections, their fields and the validation of
// collection definitions and of record bodies.
package schema

import (
	"encoding/json"
	"fmt"
	"github.com/strata-dev/strata/internal/ascii"
	"github.com/strata-dev/strata/internal/ratelimit"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// CollectionType says how a collection stores its records.
type CollectionType string

const (
	// Base collections have typed fields, one column each.
	Base CollectionType = "base"
	// Document collections store each record as one JSON document; filters
	// and sorts reach into nested paths.
	Document CollectionType = "document"
	// Auth collections are base collections whose records can sign in:
	// they have the system fields email, verified and password_hash.
	Auth CollectionType = "auth"
)

// System fields of auth collections.
const (
	FieldEmail        = "email"
	FieldVerified     = "verified"
	FieldPasswordHash = "password_hash"
)

// FieldType is the type of a field of a base collection.
type FieldType string

const (
	Text     FieldType = "text"
	Number   FieldType = "number"
	Bool     FieldType = "bool"
	DateTime FieldType = "datetime"
	Email    FieldType = "email"
	URL      FieldType = "url"
	Select   FieldType = "select"
	Relation FieldType = "relation"
	JSON     FieldType = "json"
)

var fieldTypes = []FieldType{Text, Number, Bool, DateTime, Email, URL, Select, Relation, JSON}

// System fields present on every record.
const (
	FieldID      = "id"
	FieldCreated = "created"
	FieldUpdated = "updated"
	// DocumentColumn is the column that holds a document record's body.
	DocumentColumn = "data"
)

// TimeLayout is how datetimes are written in records and stored in SQLite:
// fixed width UTC with milliseconds, so text order is time order.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Field is one field of a base collection.
type Field struct {
	// ID is stable across renames; it is assigned when the field is created.
	ID       string    `json:"id,omitempty"`
	Name     string    `json:"name"`
	Type     FieldType `json:"type"`
	Required bool      `json:"required,omitempty"`
	Unique   bool      `json:"unique,omitempty"`
	// Min and Max bound a number's value, a text's length in characters, and
	// the count of items of a multiple select or relation.
	Min     *float64        `json:"min,omitempty"`
	Max     *float64        `json:"max,omitempty"`
	Pattern string          `json:"pattern,omitempty"`
	Default json.RawMessage `json:"default,omitempty"`
	// Values are the allowed values of a select.
	Values []string `json:"values,omitempty"`
	// Multiple makes a select or relation hold a list.
	Multiple bool `json:"multiple,omitempty"`
	// Collection is the target of a relation.
	Collection string `json:"collection,omitempty"`
	// Hidden fields are never returned by the API.
	Hidden bool `json:"hidden,omitempty"`
	// Protected fields can be written by superusers only.
	Protected bool `json:"protected,omitempty"`
	// System fields are added by Strata and cannot be dropped, renamed or
	// retyped.
	System bool `json:"system,omitempty"`

	pattern *regexp.Regexp
}

// IsList reports whether the field's value is a JSON array of strings.
func (f *Field) IsList() bool {
	return f.Multiple && (f.Type == Select || f.Type == Relation)
}

// Index is a secondary index over one or more fields.
type Index struct {
	Name   string   `json:"name,omitempty"`
	Fields []string `json:"fields"`
	Unique bool     `json:"unique,omitempty"`
}

// Collection is a named set of records with one schema.
type Collection struct {
	ID      string         `json:"id,omitempty"`
	Name    string         `json:"name"`
	Type    CollectionType `json:"type"`
	Fields  []*Field       `json:"fields"`
	Indexes []Index        `json:"indexes"`
	// Rules say who may do what; see Rules.
	Rules Rules `json:"rules"`
	// OAuth2 lists the OpenID Connect providers users of an auth
	// collection may sign in with.
	OAuth2 []OAuth2Provider `json:"oauth2,omitempty"`
	// Cache is how the records service caches the collection's records,
	// and what HTTP caches may keep; nil caches nothing.
	Cache *Cache `json:"cache,omitempty"`
	// RateLimit, such as "100/min burst 20", replaces the default limit
	// of each client (address, user or API key) on the collection's record
	// routes; "" keeps the default.
	RateLimit string    `json:"rate_limit,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// OAuth2Provider is an OpenID Connect provider, found by its issuer URL
// (discovery).
type OAuth2Provider struct {
	Name string `json:"name"`
	// Type is "oidc" (the default: endpoints found by discovery from
	// Issuer, identity from the ID token) or "oauth2" for providers with
	// plain OAuth2 and a user API, such as GitHub.
	Type         string   `json:"type,omitempty"`
	Issuer       string   `json:"issuer,omitempty"`
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	Scopes       []string `json:"scopes,omitempty"`
	// For "oauth2": the authorization and token endpoints, the user API
	// (answering {"id", "email", "email_verified"}) and, optionally, an
	// emails API answering [{"email", "verified", "primary"}], as GitHub's.
	AuthURL     string `json:"auth_url,omitempty"`
	TokenURL    string `json:"token_url,omitempty"`
	UserInfoURL string `json:"userinfo_url,omitempty"`
	EmailsURL   string `json:"emails_url,omitempty"`
}

// Provider returns the named provider, or nil.
func (c *Collection) Provider(name string) *OAuth2Provider {
	for i := range c.OAuth2 {
		if c.OAuth2[i].Name == name {
			return &c.OAuth2[i]
		}
	}
	return nil
}

// Rules are the access rules of a collection, one per operation, in the
// filter language with @request variables. A nil rule lets superusers only
// (deny by default); an empty rule lets everyone.
type Rules struct {
	List   *string `json:"list"`
	View   *string `json:"view"`
	Create *string `json:"create"`
	Update *string `json:"update"`
	Delete *string `json:"delete"`
	// Auth, on an auth collection, must hold for an account's record for
	// it to sign in (for example "verified = true"). Unlike the others, a
	// missing auth rule lets every account sign in.
	Auth *string `json:"auth,omitempty"`
}

// Each calls f with every operation's name and rule.
func (r *Rules) Each(f func(op string, rule *string)) {
	f("list", r.List)
	f("view", r.View)
	f("create", r.Create)
	f("update", r.Update)
	f("delete", r.Delete)
	if r.Auth != nil {
		f("auth", r.Auth)
	}
}

// HasFields reports whether records have one column per field: base
// and auth collections.
func (c *Collection) HasFields() bool { return c.Type != Document }

// HidesData reports whether a record's internal JSON (AppendInternalJSON)
// holds more than the API shows (AppendJSON): whether a field is hidden
// without being a secret the system keeps out of both.
func (c *Collection) HidesData() bool {
	for _, f := range c.Fields {
		if f.Hidden && !f.System {
			return true
		}
	}
	return false
}

// AuthFields are the system fields every auth collection has.
func AuthFields() []*Field {
	return []*Field{
		{Name: FieldEmail, Type: Email, Required: true, Unique: true, System: true},
		{Name: FieldVerified, Type: Bool, Protected: true, System: true},
		{Name: FieldPasswordHash, Type: Text, Hidden: true, Protected: true, System: true},
	}
}

// Field returns the named field, or nil.
func (c *Collection) Field(name string) *Field {
	for _, f := range c.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// FieldByID returns the field with the given id, or nil.
func (c *Collection) FieldByID(id string) *Field {
	for _, f := range c.Fields {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// FieldError is one problem with one field of a request body.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError lists every problem found in a body.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Error()
	}
	return "invalid: " + strings.Join(parts, "; ")
}

func (e *ValidationError) add(field, code, format string, args ...any) {
	e.Errors = append(e.Errors, FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) err() error {
	if len(e.Errors) == 0 {
		return nil
	}
	return e
}

// namePattern is what names of collections, fields, indexes and
// providers look like.
const namePattern = `^[a-z][a-z0-9_]{0,62}$`

var nameFirst, nameRest = ascii.NewSet("a-z"), ascii.NewSet("a-z0-9_")

// reserved names may not be used as field names: they are system fields or
// words the filter language gives a meaning to.
var reserved = map[string]bool{
	FieldID: true, FieldCreated: true, FieldUpdated: true,
	"null": true, "true": true, "false": true, "in": true,
}

// ValidName reports whether s may name a collection or a field.
func ValidName(s string) bool { return ascii.Name(s, nameFirst, nameRest, 1, 63) }

// Validate checks a collection definition. lookup resolves the targets of
// relations; it may be nil when the collection has none. Validate compiles
// patterns, so call it before validating records.
func (c *Collection) Validate(lookup func(string) *Collection) error {
	var ve ValidationError
	if !ValidName(c.Name) {
		ve.add("name", "invalid_name", "collection name %q must match %s", c.Name, namePattern)
	}
	switch c.Type {
	case Base, Document, Auth:
	case "":
		c.Type = Base
	default:
		ve.add("type", "invalid_value", "collection type %q is not one of base, document, auth", c.Type)
	}
	if c.Type == Document && len(c.Fields) > 0 {
		ve.add("fields", "invalid_value", "a document collection has no fields; its records are JSON documents")
	}
	seen := map[string]bool{}
	for i, f := range c.Fields {
		path := fmt.Sprintf("fields[%d]", i)
		if f == nil {
			ve.add(path, "required", "field must be an object")
			continue
		}
		validateField(&ve, path, f, c, lookup)
		if seen[f.Name] {
			ve.add(path+".name", "duplicate", "field name %q is used twice", f.Name)
		}
		seen[f.Name] = true
	}
	if c.Type == Auth {
		for _, want := range AuthFields() {
			f := c.Field(want.Name)
			if f == nil || f.Type != want.Type || !f.System {
				ve.add("fields", "system_field", "an auth collection must keep its system field %s (%s)", want.Name, want.Type)
			}
		}
	}
	for i, f := range c.Fields {
		if f != nil && f.System && c.Type != Auth {
			ve.add(fmt.Sprintf("fields[%d].system", i), "invalid_value", "only auth collections have system fields")
		}
	}
	for i, p := range c.OAuth2 {
		path := fmt.Sprintf("oauth2[%d]", i)
		if c.Type != Auth {
			ve.add(path, "invalid_value", "only auth collections have sign-in providers")
		}
		if !ValidName(p.Name) {
			ve.add(path+".name", "invalid_name", "provider name %q must match %s", p.Name, namePattern)
		}
		httpURL := func(s string) bool {
			u, err := url.Parse(s)
			return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
		}
		switch p.Type {
		case "", "oidc":
			if !httpURL(p.Issuer) {
				ve.add(path+".issuer", "invalid_url", "issuer must be the provider's http(s) URL")
			}
		case "oauth2":
			for _, u := range []struct{ name, v string }{{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"userinfo_url", p.UserInfoURL}} {
				if !httpURL(u.v) {
					ve.add(path+"."+u.name, "invalid_url", "%s must be an http(s) URL", u.name)
				}
			}
			if p.EmailsURL != "" && !httpURL(p.EmailsURL) {
				ve.add(path+".emails_url", "invalid_url", "emails_url must be an http(s) URL")
			}
		default:
			ve.add(path+".type", "invalid_value", "provider type %q is not oidc or oauth2", p.Type)
		}
		if p.ClientID == "" || p.ClientSecret == "" {
			ve.add(path+".client_id", "required", "client_id and client_secret are required")
		}
		for j := range i {
			if c.OAuth2[j].Name == p.Name {
				ve.add(path+".name", "duplicate", "provider %q is listed twice", p.Name)
			}
		}
	}
	validateCache(&ve, c)
	if c.RateLimit != "" {
		if _, err := ratelimit.ParseLimit(c.RateLimit); err != nil {
			ve.add("rate_limit", "invalid_value", "%s", err.Error())
		}
	}
	for i, ix := range c.Indexes {
		path := fmt.Sprintf("indexes[%d]", i)
		if len(ix.Fields) == 0 {
			ve.add(path+".fields", "required", "an index needs at least one field")
		}
		if ix.Name != "" && !ValidName(ix.Name) {
			ve.add(path+".name", "invalid_name", "index name %q must match %s", ix.Name, namePattern)
		}
		for _, name := range ix.Fields {
			if c.HasFields() && !seen[name] && name != FieldCreated && name != FieldUpdated {
				ve.add(path+".fields", "unknown_field", "index field %q is not a field of the collection", name)
			}
			if c.Type == Document && name != FieldCreated && name != FieldUpdated {
				ve.add(path+".fields", "invalid_value", "document collections index only created and updated")
			}
		}
	}
	return ve.err()
}

func validateField(ve *ValidationError, path string, f *Field, c *Collection, lookup func(string) *Collection) {
	if !ValidName(f.Name) || reserved[f.Name] {
		ve.add(path+".name", "invalid_name", "field name %q must match %s and not be a reserved word", f.Name, namePattern)
	}
	known := false
	for _, t := range fieldTypes {
		known = known || f.Type == t
	}
	if !known {
		ve.add(path+".type", "invalid_value", "field type %q is not one of %v", f.Type, fieldTypes)
		return
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		ve.add(path+".min", "invalid_value", "min %v is greater than max %v", *f.Min, *f.Max)
	}
	if f.Pattern != "" {
		if f.Type != Text && f.Type != Email && f.Type != URL {
			ve.add(path+".pattern", "invalid_value", "pattern applies to text, email and url fields only")
		}
		re, err := regexp.Compile(f.Pattern)
		if err != nil {
			ve.add(path+".pattern", "invalid_value", "pattern does not compile: %v", err)
		}
		f.pattern = re
	}
	switch f.Type {
	case Select:
		if len(f.Values) == 0 {
			ve.add(path+".values", "required", "a select field needs its allowed values")
		}
	case Relation:
		if f.Collection == "" {
			ve.add(path+".collection", "required", "a relation field needs its target collection")
		} else if f.Collection != c.Name && (lookup == nil || lookup(f.Collection) == nil) {
			ve.add(path+".collection", "unknown_collection", "relation target %q is not a collection", f.Collection)
		}
	default:
		if f.Multiple {
			ve.add(path+".multiple", "invalid_value", "multiple applies to select and relation fields only")
		}
		if len(f.Values) > 0 {
			ve.add(path+".values", "invalid_value", "values apply to select fields only")
		}
		if f.Collection != "" {
			ve.add(path+".collection", "invalid_value", "collection applies to relation fields only")
		}
	}
	if len(f.Default) > 0 {
		if _, fe := f.Value(f.Default); fe != nil {
			ve.add(path+".default", "invalid_value", "default is not a valid value: %s", fe.Message)
		}
	}
}
