package rest_test

import (
	"testing"
)

func TestCacheHeaders(t *testing.T) {
	e := newEnv(t, "sqlite")
	owner := "owner = @request.auth.id"
	e.request("POST", "/api/v1/collections", map[string]any{
		"name": "posts", "fields": []map[string]any{{"name": "title", "type": "text"}, {"name": "views", "type": "number"}},
		"rules": map[string]any{"list": "", "view": "", "update": ""},
		"cache": map[string]any{"policy": "write-back", "ttl": "30s", "counters": []string{"views"},
			"http": map[string]any{"max_age": "60s", "stale_while_revalidate": "30s"}},
	}).status(201)
	e.request("POST", "/api/v1/collections", map[string]any{
		"name": "notes", "fields": []map[string]any{{"name": "owner", "type": "text"}},
		"rules": map[string]any{"list": owner, "view": owner},
		"cache": map[string]any{"policy": "cache-aside", "http": map[string]any{"max_age": "60s"}},
	}).status(201)
	e.request("POST", "/api/v1/collections", map[string]any{
		"name": "drafts", "fields": []map[string]any{{"name": "title", "type": "text"}},
		"rules": map[string]any{"list": "", "view": ""},
	}).status(201)
	post := e.mustCreate("posts", map[string]any{"title": "hello", "views": 1})
	note := e.mustCreate("notes", map[string]any{"owner": "u1"})
	draft := e.mustCreate("drafts", map[string]any{"title": "d"})

	const public = "public, max-age=60, stale-while-revalidate=30"
	const private = "private, no-cache"
	for _, tc := range []struct {
		name, path string
		super      bool
		want       string
	}{
		{"public view", "/api/v1/collections/posts/records/" + post["id"].(string), false, public},
		{"public list", "/api/v1/collections/posts/records", false, public},
		{"public view as superuser", "/api/v1/collections/posts/records/" + post["id"].(string), true, public},
		{"public list with expand", "/api/v1/collections/posts/records?expand=", false, public},
		{"owner rule view", "/api/v1/collections/notes/records/" + note["id"].(string), true, private},
		{"owner rule list", "/api/v1/collections/notes/records", false, private},
		{"no max_age", "/api/v1/collections/drafts/records/" + draft["id"].(string), false, private},
		{"audit", "/api/v1/audit", true, private},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res *response
			if tc.super {
				res = e.request("GET", tc.path, nil)
			} else {
				res = e.anon("GET", tc.path, nil)
			}
			res.status(200)
			if got := res.Header().Get("Cache-Control"); got != tc.want {
				t.Errorf("Cache-Control = %q, want %q", got, tc.want)
			}
			if got := res.Header().Get("Vary"); got != "Authorization, X-API-Key" {
				t.Errorf("Vary = %q", got)
			}
			etag := res.Header().Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			var again *response
			if tc.super {
				again = e.request("GET", tc.path, nil, "If-None-Match", etag)
			} else {
				again = e.anon("GET", tc.path, nil, "If-None-Match", etag)
			}
			again.status(304)
			if again.Header().Get("Cache-Control") != tc.want || again.Body.Len() != 0 {
				t.Errorf("304: Cache-Control %q, body %q", again.Header().Get("Cache-Control"), again.Body.String())
			}
		})
	}

	// A list's ETag changes with its content.
	list := e.anon("GET", "/api/v1/collections/posts/records", nil).status(200)
	e.anon("POST", "/api/v1/collections/posts/records/"+post["id"].(string)+"/increment", map[string]any{"views": 2}).status(200)
	after := e.anon("GET", "/api/v1/collections/posts/records", nil, "If-None-Match", list.Header().Get("ETag")).status(200)
	if after.Header().Get("ETag") == list.Header().Get("ETag") {
		t.Fatal("the list's ETag did not change with its content")
	}
	// An error is not marked cacheable.
	bad := e.anon("GET", "/api/v1/collections/posts/records?filter=(", nil)
	bad.problem(400)
	if bad.Header().Get("Cache-Control") == public {
		t.Fatal("an error response is public")
	}
}

func TestIncrementRoute(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{
			"name": "posts", "fields": []map[string]any{{"name": "title", "type": "text"}, {"name": "views", "type": "number"}},
			"rules": map[string]any{"view": "", "update": ""},
			"cache": map[string]any{"policy": "write-back", "counters": []string{"views"}},
		}).status(201)
		p := e.mustCreate("posts", map[string]any{"title": "x", "views": 5})
		path := "/api/v1/collections/posts/records/" + p["id"].(string)
		for i := 1; i <= 3; i++ {
			got := e.anon("POST", path+"/increment", map[string]any{"views": 1}).status(200).json()
			if got["views"] != float64(5+i) {
				t.Fatalf("increment %d: %v", i, got)
			}
		}
		if got := e.anon("GET", path, nil).status(200).json(); got["views"] != float64(8) {
			t.Fatalf("view after increments: %v", got)
		}
		prob := e.anon("POST", path+"/increment", map[string]any{"title": 1}).problem(400)
		if fields, _ := prob["errors"].([]any); len(fields) != 1 {
			t.Fatalf("increment of a field that is no counter: %v", prob)
		}
		e.anon("POST", path+"/increment", map[string]any{"views": "one"}).problem(400)
		e.anon("POST", "/api/v1/collections/posts/records/00000000-0000-7000-8000-000000000000/increment", map[string]any{"views": 1}).problem(404)
		// Bad settings are refused with the field named.
		prob = e.request("PATCH", "/api/v1/collections/posts", map[string]any{"cache": map[string]any{"policy": "write-back", "counters": []string{"nope"}}}).problem(400)
		if fields, _ := prob["errors"].([]any); len(fields) != 1 || fields[0].(map[string]any)["field"] != "cache.counters[0]" {
			t.Fatalf("bad counter: %v", prob)
		}
		if err := e.recs.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}
