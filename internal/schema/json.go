package schema

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/strata-dev/strata/internal/jsontext"
)

// Record is one record of a collection.
type Record struct {
	Collection *Collection
	ID         string
	Created    time.Time
	Updated    time.Time
	Values     Values
}

// MarshalJSON writes id, created and updated first, then the fields in
// schema order (a document's keys in sorted order).
func (r *Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil, nil) }

// AppendJSON appends the record as a JSON object to buf. With fields
// non-nil only those fields are written (id always is). extra holds values
// to add after the fields, such as expanded relations.
func (r *Record) AppendJSON(buf []byte, fields map[string]bool, extra ...KV) ([]byte, error) {
	return r.appendJSON(buf, fields, false, extra)
}

// AppendInternalJSON appends the record with its hidden fields too, except
// the secrets the system keeps (password hashes): the form in which a
// record travels inside Strata, in events, to be checked against access
// rules and rendered for each reader with AppendJSON.
func (r *Record) AppendInternalJSON(buf []byte) ([]byte, error) {
	return r.appendJSON(buf, nil, true, nil)
}

func (r *Record) appendJSON(b []byte, fields map[string]bool, hidden bool, extra []KV) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = jsontext.AppendString(b, r.ID)
	want := func(k string) bool { return fields == nil || fields[k] }
	if want(FieldCreated) {
		b = append(b, `,"created":`...)
		b = appendTime(b, r.Created)
	}
	if want(FieldUpdated) {
		b = append(b, `,"updated":`...)
		b = appendTime(b, r.Updated)
	}
	var err error
	put := func(k string, v any) {
		if err != nil || !want(k) {
			return
		}
		b = append(b, ',')
		b = jsontext.AppendString(b, k)
		b = append(b, ':')
		b, err = encodeValue(b, v)
	}
	if r.Collection != nil && r.Collection.HasFields() {
		for _, f := range r.Collection.Fields {
			if !f.Hidden || hidden && !f.System {
				put(f.Name, r.Values[f.Name])
			}
		}
	} else {
		keys := make([]string, 0, len(r.Values))
		for k := range r.Values {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			put(k, r.Values[k])
		}
	}
	for _, kv := range extra {
		b = append(b, ',')
		b = jsontext.AppendString(b, kv.Key)
		b = append(b, ':')
		if err == nil {
			b, err = encodeValue(b, kv.Value)
		}
	}
	return append(b, '}'), err
}

// KV is a key and a value to write into a record's JSON.
type KV struct {
	Key   string
	Value any
}

func encodeValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		b = append(b, "null"...)
	case string:
		b = jsontext.AppendString(b, v)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return b, fmt.Errorf("json: unsupported value %v", v)
		}
		b = appendFloat(b, v)
	case bool:
		b = strconv.AppendBool(b, v)
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, s)
		}
		b = append(b, ']')
	case time.Time:
		b = appendTime(b, v)
	case json.RawMessage:
		b = append(b, v...)
	case json.Number:
		b = append(b, v...)
	// Expanded relations: written here rather than by encoding/json, which
	// takes each record's JSON from MarshalJSON and then checks and copies
	// it again (a sixth of an expanded list's CPU).
	case *Record:
		if v == nil {
			return append(b, "null"...), nil
		}
		return v.AppendJSON(b, nil)
	case []*Record:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, r := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = encodeValue(b, r); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	case map[string]any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontext.AppendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = encodeValue(b, v[k]); err != nil {
				return b, err
			}
		}
		b = append(b, '}')
	default:
		out, err := json.Marshal(v)
		return append(b, out...), err
	}
	return b, nil
}

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendTime appends t as a JSON string in TimeLayout.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	return append(AppendTime(b, t), '"')
}

// ParseInternalJSON reads a record written by AppendInternalJSON. Fields
// the collection no longer has are ignored and fields it has gained are
// null, so a record written before a schema change still reads.
func (c *Collection) ParseInternalJSON(data []byte) (*Record, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("record of %s: %w", c.Name, err)
	}
	r := &Record{Collection: c, Values: make(Values, len(body))}
	if err := json.Unmarshal(body[FieldID], &r.ID); err != nil || r.ID == "" {
		return nil, fmt.Errorf("record of %s: no id", c.Name)
	}
	for _, k := range []string{FieldCreated, FieldUpdated} {
		var s string
		if raw, ok := body[k]; ok {
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("record of %s: %s: %w", c.Name, k, err)
			}
		}
		t, _ := ParseStoredTime(s)
		if k == FieldCreated {
			r.Created = t
		} else {
			r.Updated = t
		}
		delete(body, k)
	}
	delete(body, FieldID)
	if !c.HasFields() {
		for k, raw := range body {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("record of %s: %s: %w", c.Name, k, err)
			}
			r.Values[k] = v
		}
		return r, nil
	}
	for _, f := range c.Fields {
		raw, ok := body[f.Name]
		if !ok || string(raw) == "null" {
			r.Values[f.Name] = nil
			continue
		}
		v, fe := f.Value(raw)
		if fe != nil {
			return nil, fmt.Errorf("record of %s: %s: %s", c.Name, f.Name, fe.Message)
		}
		r.Values[f.Name] = v
	}
	return r, nil
}
