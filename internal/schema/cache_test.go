package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestValidateCache(t *testing.T) {
	fields := func() []*Field {
		return []*Field{{Name: "title", Type: Text}, {Name: "views", Type: Number}, {Name: "code", Type: Number, Unique: true}}
	}
	tests := []struct {
		name  string
		typ   CollectionType
		cache *Cache
		want  string // "" for valid; else "field: code"
	}{
		{name: "none", cache: &Cache{Policy: CacheNone}},
		{name: "empty", cache: &Cache{}},
		{name: "aside", cache: &Cache{Policy: CacheAside, TTL: "30s", HTTP: &HTTPCache{MaxAge: "60s", StaleWhileRevalidate: "30s"}}},
		{name: "write-back", cache: &Cache{Policy: CacheWriteBack, Counters: []string{"views"}}},
		{name: "http only", cache: &Cache{HTTP: &HTTPCache{MaxAge: "1h"}}},
		{name: "unknown policy", cache: &Cache{Policy: "lru"}, want: "cache.policy: invalid_value"},
		{name: "bad ttl", cache: &Cache{Policy: CacheAside, TTL: "soon"}, want: "cache.ttl: invalid_duration"},
		{name: "negative ttl", cache: &Cache{Policy: CacheAside, TTL: "-1s"}, want: "cache.ttl: invalid_value"},
		{name: "ttl too long", cache: &Cache{Policy: CacheAside, TTL: "48h"}, want: "cache.ttl: invalid_value"},
		{name: "ttl fraction", cache: &Cache{Policy: CacheAside, TTL: "1.5s"}, want: "cache.ttl: invalid_value"},
		{name: "ttl without policy", cache: &Cache{TTL: "1m"}, want: "cache.ttl: invalid_value"},
		{name: "counters without write-back", cache: &Cache{Policy: CacheAside, Counters: []string{"views"}}, want: "cache.counters: invalid_value"},
		{name: "write-back without counters", cache: &Cache{Policy: CacheWriteBack}, want: "cache.counters: required"},
		{name: "unknown counter", cache: &Cache{Policy: CacheWriteBack, Counters: []string{"likes"}}, want: "cache.counters[0]: unknown_field"},
		{name: "text counter", cache: &Cache{Policy: CacheWriteBack, Counters: []string{"title"}}, want: "cache.counters[0]: invalid_value"},
		{name: "unique counter", cache: &Cache{Policy: CacheWriteBack, Counters: []string{"code"}}, want: "cache.counters[0]: invalid_value"},
		{name: "duplicate counter", cache: &Cache{Policy: CacheWriteBack, Counters: []string{"views", "views"}}, want: "cache.counters[1]: duplicate"},
		{name: "swr without max_age", cache: &Cache{HTTP: &HTTPCache{StaleWhileRevalidate: "1m"}}, want: "cache.http.max_age: required"},
		{name: "bad max_age", cache: &Cache{HTTP: &HTTPCache{MaxAge: "60"}}, want: "cache.http.max_age: invalid_duration"},
		{name: "auth collection", typ: Auth, cache: &Cache{Policy: CacheAside}, want: "cache.policy: invalid_value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Collection{Name: "posts", Type: tt.typ, Fields: fields(), Cache: tt.cache}
			if tt.typ == Auth {
				c.Fields = append(c.Fields, AuthFields()...)
			}
			err := c.Validate(nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			ve, ok := err.(*ValidationError)
			if !ok {
				t.Fatalf("Validate = %v, want %s", err, tt.want)
			}
			for _, fe := range ve.Errors {
				if fe.Field+": "+fe.Code == tt.want {
					return
				}
			}
			t.Fatalf("Validate = %v, want %s", err, tt.want)
		})
	}
}

func TestCacheJSONRoundTrip(t *testing.T) {
	in := `{"name":"posts","type":"base","fields":[{"name":"views","type":"number"}],"indexes":null,"rules":{"list":null,"view":null,"create":null,"update":null,"delete":null},` +
		`"cache":{"policy":"write-back","ttl":"30s","counters":["views"],"http":{"max_age":"60s","stale_while_revalidate":"30s"}},"created":"0001-01-01T00:00:00Z","updated":"0001-01-01T00:00:00Z"}`
	var c Collection
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(nil); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var again Collection
	if err := json.Unmarshal(out, &again); err != nil || !reflect.DeepEqual(again.Cache, c.Cache) {
		t.Fatalf("round trip: %s", out)
	}
	if !strings.Contains(string(out), `"cache":{"policy":"write-back"`) {
		t.Fatalf("marshalled without the cache: %s", out)
	}
	if c.CachePolicy() != CacheWriteBack || !c.IsCounter("views") || c.CacheTTL().Seconds() != 30 {
		t.Fatalf("accessors: %v %v %v", c.CachePolicy(), c.IsCounter("views"), c.CacheTTL())
	}
	// No cache setting marshals as none.
	b, _ := json.Marshal(&Collection{Name: "x"})
	if strings.Contains(string(b), "cache") {
		t.Fatalf("a collection without a cache setting marshals one: %s", b)
	}
}
