package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func f64(v float64) *float64 { return &v }

func testCollection(t testing.TB) *Collection {
	c := &Collection{Name: "posts", Type: Base, Fields: []*Field{
		{Name: "title", Type: Text, Required: true, Min: f64(1), Max: f64(10)},
		{Name: "views", Type: Number, Min: f64(0), Max: f64(100)},
		{Name: "ok", Type: Bool},
		{Name: "at", Type: DateTime},
		{Name: "mail", Type: Email},
		{Name: "site", Type: URL},
		{Name: "tag", Type: Select, Values: []string{"a", "b"}},
		{Name: "tags", Type: Select, Values: []string{"a", "b", "c"}, Multiple: true, Max: f64(2)},
		{Name: "owner", Type: Relation, Collection: "posts"},
		{Name: "meta", Type: JSON},
		{Name: "code", Type: Text, Pattern: `^[A-Z]{3}$`},
		{Name: "state", Type: Select, Values: []string{"new", "old"}, Default: json.RawMessage(`"new"`)},
	}}
	if err := c.Validate(nil); err != nil {
		t.Fatal(err)
	}
	return c
}

func decodeBody(t testing.TB, s string) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDecode(t *testing.T) {
	c := testCollection(t)
	cases := []struct {
		body  string
		field string // "" = valid
		code  string
	}{
		{`{"title":"x"}`, "", ""},
		{`{"title":"x","views":0,"ok":false,"at":"2026-01-02T03:04:05Z","mail":"a@b.co","site":"http://x.y/z","tag":"a","tags":["a","b","a"],"owner":"abc","meta":{"k":[1,2]},"code":"ABC"}`, "", ""},
		{`{}`, "title", "required"},
		{`{"title":""}`, "title", "required"},
		{`{"title":null}`, "title", "required"},
		{`{"title":"01234567890"}`, "title", "too_long"},
		{`{"title":"ééééééééé"}`, "", ""}, // 9 characters, 18 bytes
		{`{"title":1}`, "title", "invalid_type"},
		{`{"title":"x","views":-1}`, "views", "too_small"},
		{`{"title":"x","views":101}`, "views", "too_large"},
		{`{"title":"x","views":"1"}`, "views", "invalid_type"},
		{`{"title":"x","ok":"true"}`, "ok", "invalid_type"},
		{`{"title":"x","at":"2026-13-01T00:00:00Z"}`, "at", "invalid_datetime"},
		{`{"title":"x","mail":"Ada <a@b.co>"}`, "mail", "invalid_email"},
		{`{"title":"x","site":"ftp://x.y"}`, "site", "invalid_url"},
		{`{"title":"x","site":"/relative"}`, "site", "invalid_url"},
		{`{"title":"x","tag":"z"}`, "tag", "invalid_choice"},
		{`{"title":"x","tags":["a","b","c"]}`, "tags", "too_many"},
		{`{"title":"x","tags":"a"}`, "tags", "invalid_type"},
		{`{"title":"x","owner":"has space"}`, "owner", "invalid_value"},
		{`{"title":"x","code":"abc"}`, "code", "pattern_mismatch"},
		{`{"title":"x","nope":1}`, "nope", "unknown_field"},
		{`{"title":"x","created":"2026-01-01T00:00:00Z"}`, "created", "read_only"},
		{`{"title":"x","id":"bad id"}`, "id", "invalid_value"},
		{`{"title":"a\u0000b"}`, "title", "invalid_value"},
		{`{"title":"x","meta":{"a":"\u0000"}}`, "meta", "invalid_json"},
	}
	for _, tc := range cases {
		vals, _, err := c.Decode(decodeBody(t, tc.body), nil, false)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			if vals["state"] != "new" {
				t.Errorf("%s: default not applied: %v", tc.body, vals["state"])
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: err = %v, want a validation error", tc.body, err)
			continue
		}
		found := false
		for _, fe := range ve.Errors {
			found = found || (fe.Field == tc.field && fe.Code == tc.code)
		}
		if !found {
			t.Errorf("%s: errors %v, want %s/%s", tc.body, ve.Errors, tc.field, tc.code)
		}
	}
}

func TestDecodeUpdate(t *testing.T) {
	c := testCollection(t)
	old, _, err := c.Decode(decodeBody(t, `{"title":"x","views":5,"tags":["a"]}`), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	patched, _, err := c.Decode(decodeBody(t, `{"views":6}`), old, false)
	if err != nil || patched["title"] != "x" || patched["views"] != 6.0 {
		t.Errorf("patch: %v %v", patched, err)
	}
	replaced, _, err := c.Decode(decodeBody(t, `{"title":"y"}`), old, true)
	if err != nil || replaced["views"] != nil || replaced["title"] != "y" {
		t.Errorf("replace: %v %v", replaced, err)
	}
	if _, _, err := c.Decode(decodeBody(t, `{"title":null}`), old, false); err == nil {
		t.Errorf("patch may not clear a required field")
	}
	if _, _, err := c.Decode(decodeBody(t, `{"id":"other"}`), old, false); err == nil {
		t.Errorf("patch may not change the id")
	}
}

func TestParseTime(t *testing.T) {
	got, err := ParseTime("2026-01-02T03:04:05.123456+02:00")
	if err != nil || got.Format(TimeLayout) != "2026-01-02T01:04:05.123Z" {
		t.Errorf("got %v, %v", got, err)
	}
	if d, err := ParseTime("2026-01-02"); err != nil || !d.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("date: %v %v", d, err)
	}
}

func TestValidateCollection(t *testing.T) {
	cases := []struct {
		c    Collection
		want string
	}{
		{Collection{Name: "Posts"}, "name"},
		{Collection{Name: "_x"}, "name"},
		{Collection{Name: "p", Type: "table"}, "type"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: "blob"}}}, "fields[0].type"},
		{Collection{Name: "p", Fields: []*Field{{Name: "created", Type: Text}}}, "fields[0].name"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Text}, {Name: "a", Type: Number}}}, "fields[1].name"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Select}}}, "fields[0].values"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Relation, Collection: "users"}}}, "fields[0].collection"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Text, Pattern: "("}}}, "fields[0].pattern"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Number, Min: f64(2), Max: f64(1)}}}, "fields[0].min"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Number, Default: json.RawMessage(`"x"`)}}}, "fields[0].default"},
		{Collection{Name: "p", Fields: []*Field{{Name: "a", Type: Text, Multiple: true}}}, "fields[0].multiple"},
		{Collection{Name: "p", Indexes: []Index{{Fields: []string{"nope"}}}}, "indexes[0].fields"},
		{Collection{Name: "p", Type: Document, Fields: []*Field{{Name: "a", Type: Text}}}, "fields"},
	}
	for _, tc := range cases {
		err := tc.c.Validate(func(string) *Collection { return nil })
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%+v: err = %v", tc.c, err)
			continue
		}
		found := false
		for _, fe := range ve.Errors {
			found = found || fe.Field == tc.want
		}
		if !found {
			t.Errorf("%+v: errors %v do not name %s", tc.c, ve.Errors, tc.want)
		}
	}
}

// FuzzDecode feeds arbitrary bodies to record validation: it must never
// panic, and whatever it accepts must be values of the field types that
// encode back to JSON.
func FuzzDecode(f *testing.F) {
	f.Add(`{"title":"x","views":1,"tags":["a"],"meta":{"a":1}}`)
	f.Add(`{"title":"ééé","at":"2026-01-02T03:04:05Z","site":"https://x.y"}`)
	f.Add(`{"title":"x","meta":"\u0000"}`)
	f.Add(`{"title":1e400}`)
	c := testCollection(f)
	doc := &Collection{Name: "docs", Type: Document}
	f.Fuzz(func(t *testing.T, body string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		for _, col := range []*Collection{c, doc} {
			vals, _, err := col.Decode(m, nil, false)
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Errors) == 0 {
					t.Fatalf("error is not a validation error: %v", err)
				}
				continue
			}
			r := &Record{Collection: col, ID: "x", Values: vals}
			out, err := r.MarshalJSON()
			if err != nil || !json.Valid(out) {
				t.Fatalf("accepted %s but cannot encode it: %v %s", body, err, out)
			}
			if s, ok := vals["title"].(string); ok && col == c {
				if n := utf8.RuneCountInString(s); n < 1 || n > 10 || strings.ContainsRune(s, 0) {
					t.Fatalf("accepted title %q", s)
				}
			}
		}
	})
}

// FuzzWriteJSON: strings and numbers written by the fast encoder decode to
// what was written, as encoding/json's would.
func FuzzWriteJSON(f *testing.F) {
	f.Add("plain", 1.5)
	f.Add("quote\" back\\ nl\n tab\t ctl\x01 \u2028 \xff é <&>", 1e-7)
	f.Add("", 1e21)
	f.Add("x", -0.0)
	f.Fuzz(func(t *testing.T, s string, n float64) {
		b, err := encodeValue(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q wrote invalid JSON %s: %v", s, b, err)
		}
		var want string
		stdS, _ := json.Marshal(s)
		json.Unmarshal(stdS, &want)
		if got != want {
			t.Fatalf("%q came back as %q", want, got)
		}
		if math.IsInf(n, 0) || math.IsNaN(n) {
			return
		}
		std, _ := json.Marshal(n)
		if fast := appendFloat(nil, n); string(fast) != string(std) {
			t.Fatalf("%v: fast %s, encoding/json %s", n, fast, std)
		}
	})
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func TestValidID(t *testing.T) {
	for _, s := range []string{"", "a", "abc_DEF-019", strings.Repeat("x", 64), strings.Repeat("x", 65), "a b", "a/b", "é", "a\x00", "../x", "a.b"} {
		if got, want := ValidID(s), idPattern.MatchString(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzValidID holds ValidID to the pattern it stands for.
func FuzzValidID(f *testing.F) {
	f.Add("abc_DEF-019")
	f.Add("a/b")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidID(s), idPattern.MatchString(s); got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", s, got, want)
		}
	})
}

// BenchmarkAppendJSON renders a post as a list renders each of its items.
func BenchmarkAppendJSON(b *testing.B) {
	c := &Collection{Name: "posts", Type: Base, Fields: []*Field{
		{Name: "title", Type: Text}, {Name: "views", Type: Number}, {Name: "published", Type: Bool}, {Name: "body", Type: Text},
	}}
	at := time.Date(2026, 11, 23, 18, 0, 0, 123e6, time.UTC)
	r := &Record{Collection: c, ID: "01a209bf-9feb-713b-8648-9a101aa03bd0", Created: at, Updated: at, Values: Values{
		"title": "Bench post lorem ipsum dolor", "views": 512.0, "published": true,
		"body": strings.Repeat("sit amet consectetur adipiscing elit sed do eiusmod ", 6),
	}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = r.AppendJSON(buf[:0], nil)
	}
}

// BenchmarkParseStoredTime reads a stored time, twice per record read.
func BenchmarkParseStoredTime(b *testing.B) {
	for b.Loop() {
		ParseStoredTime("2026-11-23T18:00:00.123Z")
	}
}

// TestAppendJSONExpand: expanded relations (a record, none, a list) and
// JSON objects written by encodeValue decode to what encoding/json wrote.
func TestAppendJSONExpand(t *testing.T) {
	c := &Collection{Name: "posts", Type: Base, Fields: []*Field{{Name: "title", Type: Text}, {Name: "views", Type: Number}}}
	at := time.Date(2026, 11, 23, 18, 0, 0, 5e6, time.UTC)
	rec := func(id, title string) *Record {
		return &Record{Collection: c, ID: id, Created: at, Updated: at, Values: Values{"title": title, "views": 1.5}}
	}
	expand := map[string]any{
		"author": rec("a1", `Ann <&> "quoted"`), "none": nil,
		"tags": []*Record{rec("t1", "x"), rec("t2", "y\u2028")}, "empty": []*Record{},
		"meta": map[string]any{"b": 1.0, "a": []any{"x", true}, "c": map[string]any{}},
	}
	r := rec("p1", "post")
	got, err := r.AppendJSON(nil, nil, KV{Key: "expand", Value: expand})
	if err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(expand)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := r.AppendJSON(nil, nil)
	want := append(append(base[:len(base)-1:len(base)-1], `,"expand":`...), append(std, '}')...)
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !bytes.Contains(got, []byte(`"expand":{"author":{"id":"a1"`)) || !bytes.Contains(got, []byte(`"empty":[],"meta":{"a":["x",true],"b":1,"c":{}},"none":null,"tags":[{"id":"t1"`)) {
		t.Errorf("keys not in order or values misplaced: %s", got)
	}
}

// BenchmarkAppendJSONExpand renders a post with its author expanded, as a
// list with expand=author renders each of its items.
func BenchmarkAppendJSONExpand(b *testing.B) {
	c := &Collection{Name: "posts", Type: Base, Fields: []*Field{{Name: "title", Type: Text}, {Name: "views", Type: Number}}}
	users := &Collection{Name: "users", Type: Base, Fields: []*Field{{Name: "name", Type: Text}, {Name: "email", Type: Text}}}
	at := time.Date(2026, 11, 23, 18, 0, 0, 123e6, time.UTC)
	r := &Record{Collection: c, ID: "01a209bf-9feb-713b-8648-9a101aa03bd0", Created: at, Updated: at,
		Values: Values{"title": "Bench post lorem ipsum dolor", "views": 512.0}}
	author := &Record{Collection: users, ID: "01a209bf-9feb-713b-8648-9a101aa03bd1", Created: at, Updated: at,
		Values: Values{"name": "Ann Example", "email": "ann@example.com"}}
	extra := KV{Key: "expand", Value: map[string]any{"author": author}}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = r.AppendJSON(buf[:0], nil, extra)
	}
}
