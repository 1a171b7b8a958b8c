package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Values are a record's field values, decoded: string (text, email, url,
// single select and relation), float64, bool, time.Time, []string (multiple
// select and relation) and json.RawMessage; nil is null. A document record
// holds its JSON document's top-level keys, decoded by encoding/json.
type Values map[string]any

// ValidID reports whether s may be a record id: 1 to 64 of A-Z, a-z, 0-9,
// _ and -. Every request that names a record asks, so it is a loop rather
// than a regexp.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Decode validates a request body for a record and returns the values to
// store. With old nil it is a create: defaults fill missing fields and
// required fields must be present. With old set and replace false it is a
// partial update merged over old; with replace true the body replaces every
// field. The id a client may choose on create is returned separately.
func (c *Collection) Decode(body map[string]json.RawMessage, old Values, replace bool) (Values, string, error) {
	var ve ValidationError
	var id string
	if raw, ok := body[FieldID]; ok {
		if old != nil {
			ve.add(FieldID, "read_only", "id cannot be changed")
		} else if err := json.Unmarshal(raw, &id); err != nil || !ValidID(id) {
			ve.add(FieldID, "invalid_value", "id must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
		}
	}
	for _, k := range []string{FieldCreated, FieldUpdated} {
		if _, ok := body[k]; ok {
			ve.add(k, "read_only", "%s is set by the server", k)
		}
	}
	if c.Type == Document {
		vals := c.decodeDocument(&ve, body, old, replace)
		return vals, id, ve.err()
	}
	for k := range body {
		if k != FieldID && k != FieldCreated && k != FieldUpdated && c.Field(k) == nil {
			ve.add(k, "unknown_field", "%q is not a field of %s", k, c.Name)
		}
	}
	vals := make(Values, len(c.Fields))
	for _, f := range c.Fields {
		raw, present := body[f.Name]
		if present && f.System && f.Hidden {
			ve.add(f.Name, "read_only", "%s is set by the server", f.Name)
			continue
		}
		switch {
		case present:
			v, fe := f.Value(raw)
			if fe != nil {
				ve.Errors = append(ve.Errors, *fe)
				continue
			}
			vals[f.Name] = v
		case old != nil && !replace:
			vals[f.Name] = old[f.Name]
		case len(f.Default) > 0:
			vals[f.Name], _ = f.Value(f.Default)
		default:
			vals[f.Name] = nil
		}
		if f.Required && isEmpty(vals[f.Name]) {
			ve.add(f.Name, "required", "%s is required", f.Name)
		}
	}
	return vals, id, ve.err()
}

func (c *Collection) decodeDocument(ve *ValidationError, body map[string]json.RawMessage, old Values, replace bool) Values {
	vals := Values{}
	if old != nil && !replace {
		for k, v := range old {
			vals[k] = v
		}
	}
	for k, raw := range body {
		if k == FieldID || k == FieldCreated || k == FieldUpdated {
			continue
		}
		if hasNUL(raw) || strings.ContainsRune(k, 0) {
			ve.add(k, "invalid_json", "must not contain NUL characters (\\u0000)")
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // keep numbers exactly as sent
		var v any
		if err := dec.Decode(&v); err != nil {
			ve.add(k, "invalid_json", "not valid JSON")
			continue
		}
		if v == nil && old != nil && !replace {
			delete(vals, k) // JSON merge patch: null removes the key
			continue
		}
		vals[k] = v
	}
	return vals
}

// hasNUL reports whether JSON text holds a NUL character, which PostgreSQL
// cannot store in text or jsonb; refusing it on both engines keeps them
// alike.
func hasNUL(raw []byte) bool {
	if !bytes.Contains(raw, []byte(`\u0000`)) && bytes.IndexByte(raw, 0) < 0 {
		return false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return true
	}
	return nulIn(v)
}

func nulIn(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, x := range v {
			if nulIn(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if strings.ContainsRune(k, 0) || nulIn(x) {
				return true
			}
		}
	}
	return false
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []string:
		return len(v) == 0
	}
	return false
}

// Value decodes and checks one field's JSON value. JSON null decodes to nil.
func (f *Field) Value(raw json.RawMessage) (any, *FieldError) {
	bad := func(code, format string, args ...any) (any, *FieldError) {
		return nil, &FieldError{Field: f.Name, Code: code, Message: fmt.Sprintf(format, args...)}
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) || len(raw) == 0 {
		return nil, nil
	}
	switch f.Type {
	case Text, Email, URL:
		var s string
		if !decodeString(raw, &s) {
			return bad("invalid_type", "must be a string")
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return bad("invalid_value", "must be valid UTF-8 without NUL characters")
		}
		// An empty text is no value: required catches it, not min.
		n := float64(utf8.RuneCountInString(s))
		if f.Min != nil && n < *f.Min && s != "" {
			return bad("too_short", "must be at least %v characters", *f.Min)
		}
		if f.Max != nil && n > *f.Max {
			return bad("too_long", "must be at most %v characters", *f.Max)
		}
		if f.Type == Email && s != "" {
			if a, err := mail.ParseAddress(s); err != nil || a.Address != s || a.Name != "" {
				return bad("invalid_email", "must be an email address like name@example.com")
			}
		}
		if f.Type == URL && s != "" {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad("invalid_url", "must be an absolute http or https URL")
			}
		}
		if re := f.compiledPattern(); re != nil && s != "" && !re.MatchString(s) {
			return bad("pattern_mismatch", "must match %s", f.Pattern)
		}
		return s, nil
	case Number:
		var n float64
		if !decodeNumber(raw, &n) || math.IsInf(n, 0) || math.IsNaN(n) {
			return bad("invalid_type", "must be a number")
		}
		if f.Min != nil && n < *f.Min {
			return bad("too_small", "must be at least %v", *f.Min)
		}
		if f.Max != nil && n > *f.Max {
			return bad("too_large", "must be at most %v", *f.Max)
		}
		return n, nil
	case Bool:
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return bad("invalid_type", "must be true or false")
	case DateTime:
		var s string
		if !decodeString(raw, &s) {
			return bad("invalid_type", "must be an RFC 3339 datetime string")
		}
		t, err := ParseTime(s)
		if err != nil {
			return bad("invalid_datetime", "must be an RFC 3339 datetime like 2026-01-02T15:04:05Z")
		}
		return t, nil
	case Select, Relation:
		if !f.Multiple {
			var s string
			if !decodeString(raw, &s) {
				return bad("invalid_type", "must be a string")
			}
			if fe := f.checkItem(s); fe != nil {
				return nil, fe
			}
			return s, nil
		}
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			return bad("invalid_type", "must be an array of strings")
		}
		seen := make(map[string]bool, len(list))
		out := make([]string, 0, len(list))
		for _, s := range list {
			if fe := f.checkItem(s); fe != nil {
				return nil, fe
			}
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
		n := float64(len(out))
		if f.Min != nil && n < *f.Min {
			return bad("too_few", "must have at least %v items", *f.Min)
		}
		if f.Max != nil && n > *f.Max {
			return bad("too_many", "must have at most %v items", *f.Max)
		}
		return out, nil
	case JSON:
		if !json.Valid(raw) {
			return bad("invalid_json", "must be valid JSON")
		}
		if hasNUL(raw) {
			return bad("invalid_json", "must not contain NUL characters (\\u0000)")
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, raw)
		return json.RawMessage(buf.Bytes()), nil
	}
	return bad("invalid_type", "unknown field type %q", f.Type)
}

func (f *Field) checkItem(s string) *FieldError {
	if f.Type == Select && !slices.Contains(f.Values, s) {
		return &FieldError{Field: f.Name, Code: "invalid_choice", Message: fmt.Sprintf("%q is not one of %q", s, f.Values)}
	}
	if f.Type == Relation && !ValidID(s) {
		return &FieldError{Field: f.Name, Code: "invalid_value", Message: fmt.Sprintf("%q is not a record id", s)}
	}
	return nil
}

func (f *Field) compiledPattern() *regexp.Regexp {
	if f.Pattern == "" {
		return nil
	}
	if f.pattern != nil {
		return f.pattern
	}
	re, _ := regexp.Compile(f.Pattern) // Validate compiles and keeps it
	return re
}

// ParseTime parses an RFC 3339 datetime (or a plain date) and returns it in
// UTC, truncated to the millisecond that records keep.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		var err2 error
		if t, err2 = time.Parse("2006-01-02", s); err2 != nil {
			return time.Time{}, err
		}
	}
	return t.UTC().Truncate(time.Millisecond), nil
}
