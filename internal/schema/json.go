package schema

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"
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
	b := bytes.NewBuffer(buf)
	b.WriteString(`{"id":`)
	writeJSON(b, r.ID)
	want := func(k string) bool { return fields == nil || fields[k] }
	if want(FieldCreated) {
		b.WriteString(`,"created":`)
		writeJSON(b, r.Created.UTC().Format(TimeLayout))
	}
	if want(FieldUpdated) {
		b.WriteString(`,"updated":`)
		writeJSON(b, r.Updated.UTC().Format(TimeLayout))
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
			if !f.Hidden {
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
		return nil
	case time.Time:
		writeJSON(b, v.UTC().Format(TimeLayout))
		return nil
	case json.RawMessage:
		b.Write(v)
		return nil
	}
	out, err := json.Marshal(v)
	b.Write(out)
	return err
}

func writeJSON(b *bytes.Buffer, s string) {
	out, _ := json.Marshal(s)
	b.Write(out)
}
