package schema

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestInternalJSONRoundTrip(t *testing.T) {
	c := &Collection{Name: "notes", Fields: []*Field{
		{Name: "title", Type: Text},
		{Name: "secret", Type: Text, Hidden: true},
		{Name: "n", Type: Number},
		{Name: "tags", Type: Select, Values: []string{"a", "b"}, Multiple: true},
		{Name: "at", Type: DateTime},
		{Name: FieldPasswordHash, Type: Text, Hidden: true, System: true},
	}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Record{Collection: c, ID: "r1", Created: at, Updated: at.Add(time.Hour), Values: Values{
		"title": "hi", "secret": "s", "n": 2.5, "tags": []string{"a", "b"}, "at": at, FieldPasswordHash: "$hash"}}
	b, err := r.AppendInternalJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "$hash") {
		t.Fatalf("internal JSON carries the password hash: %s", b)
	}
	got, err := c.ParseInternalJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Values[FieldPasswordHash] = nil
	if got.ID != r.ID || !got.Created.Equal(r.Created) || !got.Updated.Equal(r.Updated) || !reflect.DeepEqual(got.Values, r.Values) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
	if _, err := c.ParseInternalJSON([]byte(`{"title":"x"}`)); err == nil {
		t.Error("a record without id parsed")
	}
}

func FuzzParseInternalJSON(f *testing.F) {
	c := &Collection{Name: "notes", Fields: []*Field{{Name: "title", Type: Text}, {Name: "n", Type: Number}}}
	f.Add([]byte(`{"id":"a","created":"2026-01-02 03:04:05.000Z","title":"x","n":1}`))
	f.Add([]byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := c.ParseInternalJSON(data)
		if err != nil {
			return
		}
		b, err := r.AppendInternalJSON(nil)
		if err != nil {
			t.Fatalf("a parsed record does not encode: %v", err)
		}
		again, err := c.ParseInternalJSON(b)
		if err != nil || !reflect.DeepEqual(again.Values, r.Values) || again.ID != r.ID {
			t.Fatalf("not stable: %v %+v %+v", err, again, r)
		}
	})
}
