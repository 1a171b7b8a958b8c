package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
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

func (r *Record) appendJSON(buf []byte, fields map[string]bool, hidden bool, extra []KV) ([]byte, error) {
	b := bytes.NewBuffer(buf)
	b.WriteString(`{"id":`)
	writeJSON(b, r.ID)
	want := func(k string) bool { return fields == nil || fields[k] }
	if want(FieldCreated) {
		b.WriteString(`,"created":`)
		writeTime(b, r.Created)
	}
	if want(FieldUpdated) {
		b.WriteString(`,"updated":`)
		writeTime(b, r.Updated)
	}
	var err error
	put := func(k string, v any) {
		if err != nil || !want(k) {
			return
		}
		b.WriteByte(',')
		writeJSON(b, k)
		b.WriteByte(':')
		err = encodeValue(b, v)
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
		b.WriteByte(',')
		writeJSON(b, kv.Key)
		b.WriteByte(':')
		if err == nil {
			err = encodeValue(b, kv.Value)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), err
}

// KV is a key and a value to write into a record's JSON.
type KV struct {
	Key   string
	Value any
}

func encodeValue(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		writeJSON(b, v)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("json: unsupported value %v", v)
		}
		b.Write(appendFloat(b.AvailableBuffer(), v))
	case bool:
		if v {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case []string:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, s)
		}
		b.WriteByte(']')
	case time.Time:
		writeTime(b, v)
	case json.RawMessage:
		b.Write(v)
	case json.Number:
		b.WriteString(string(v))
	// Expanded relations: written here rather than by encoding/json, which
	// takes each record's JSON from MarshalJSON and then checks and copies
	// it again (a sixth of an expanded list's CPU).
	case *Record:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		out, err := v.AppendJSON(b.AvailableBuffer(), nil)
		b.Write(out)
		return err
	case []*Record:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('[')
		for i, r := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeValue(b, r); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		if v == nil {
			b.WriteString("null")
			return nil
		}
		b.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, k)
			b.WriteByte(':')
			if err := encodeValue(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		out, err := json.Marshal(v)
		b.Write(out)
		return err
	}
	return nil
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

const hex = "0123456789abcdef"

// writeTime writes t as a JSON string in TimeLayout.
func writeTime(b *bytes.Buffer, t time.Time) {
	b.WriteByte('"')
	b.Write(AppendTime(b.AvailableBuffer(), t))
	b.WriteByte('"')
}

// AppendString appends s to b as a JSON string, escaped as records are
// written.
func AppendString(b []byte, s string) []byte {
	buf := bytes.NewBuffer(b)
	writeJSON(buf, s)
	return buf.Bytes()
}

// plain8 reports whether none of the eight bytes in x needs escaping or a
// closer look: all are ASCII, none is a control character, '"' or '\\'.
// (Bit tricks from "Bit Twiddling Hacks": a byte below n, a zero byte.)
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := func(x uint64, n byte) uint64 { return (x - ones*uint64(n)) &^ x & highs }
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs }
	return x&highs|below(x, 0x20)|zero(x^(ones*'"'))|zero(x^(ones*'\\')) == 0
}

// writeJSON writes s as a JSON string, escaping what JSON requires and the
// line separators U+2028 and U+2029, as encoding/json does (but not <, >
// and &: responses are JSON, not HTML).
func writeJSON(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: text is mostly
		// plain ASCII, and rendering it was a tenth of a list's CPU.
		for i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(s[start:i])
			b.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(s[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
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
