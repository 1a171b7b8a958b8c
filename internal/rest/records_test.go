package rest_test

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
)

var usersDef = map[string]any{
	"name": "users", "type": "base",
	"fields": []any{
		map[string]any{"name": "name", "type": "text", "required": true},
		map[string]any{"name": "email", "type": "email", "unique": true},
	},
}

var postsDef = map[string]any{
	"name": "posts", "type": "base",
	"fields": []any{
		map[string]any{"name": "title", "type": "text", "required": true, "max": 200},
		map[string]any{"name": "views", "type": "number", "min": 0},
		map[string]any{"name": "published", "type": "bool"},
		map[string]any{"name": "author", "type": "relation", "collection": "users"},
		map[string]any{"name": "meta", "type": "json"},
		map[string]any{"name": "tags", "type": "select", "multiple": true, "values": []string{"go", "sql", "web"}},
		map[string]any{"name": "slug", "type": "text", "unique": true, "pattern": "^[a-z0-9-]+$"},
		map[string]any{"name": "site", "type": "url"},
		map[string]any{"name": "at", "type": "datetime"},
		map[string]any{"name": "status", "type": "select", "values": []string{"draft", "live"}, "default": "draft"},
	},
	"indexes": []any{map[string]any{"fields": []string{"published", "views"}}},
}

// withBlog creates users and posts.
func withBlog(e *testEnv) {
	e.t.Helper()
	e.request("POST", "/api/v1/collections", usersDef).status(201)
	e.request("POST", "/api/v1/collections", postsDef).status(201)
}

func TestRecordCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		u := e.mustCreate("users", map[string]any{"name": "Ada", "email": "ada@example.com"})
		p := e.request("POST", "/api/v1/collections/posts/records", map[string]any{
			"title": "Hello", "views": 3, "published": true, "author": u["id"],
			"meta": map[string]any{"a": map[string]any{"b": 1}}, "tags": []string{"go", "sql", "go"},
			"slug": "hello", "site": "https://example.com/x", "at": "2026-01-02T03:04:05.678+01:00",
		}).status(201)
		created := p.json()
		id := created["id"].(string)
		if p.Header().Get("Location") != "/api/v1/collections/posts/records/"+id {
			t.Errorf("Location = %q", p.Header().Get("Location"))
		}
		if created["status"] != "draft" {
			t.Errorf("default not applied: status = %v", created["status"])
		}
		if fmt.Sprint(created["tags"]) != "[go sql]" {
			t.Errorf("tags = %v, want deduplicated [go sql]", created["tags"])
		}
		if created["at"] != "2026-01-02T02:04:05.678Z" {
			t.Errorf("at = %v, want it in UTC with milliseconds", created["at"])
		}

		got := e.request("GET", "/api/v1/collections/posts/records/"+id, nil).status(200)
		etag := got.Header().Get("ETag")
		if etag == "" || etag != p.Header().Get("ETag") {
			t.Fatalf("ETag on view %q, on create %q", etag, p.Header().Get("ETag"))
		}
		if got.Body.String() != p.Body.String() {
			t.Errorf("view differs from create:\n%s\n%s", got.Body, p.Body)
		}
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil, "If-None-Match", etag).status(304)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil, "If-None-Match", `"other"`).status(200)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil, "If-None-Match", `"other", W/`+etag).status(304)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil, "If-None-Match", `"other",`+etag+` , "more"`).status(304)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil, "If-None-Match", `"other",,"more"`).status(200)

		// Optimistic concurrency.
		e.request("PATCH", "/api/v1/collections/posts/records/"+id, map[string]any{"views": 4}, "If-Match", `"stale"`).problem(412)
		patched := e.request("PATCH", "/api/v1/collections/posts/records/"+id, map[string]any{"views": 4}, "If-Match", etag).status(200)
		pj := patched.json()
		if pj["views"] != float64(4) || pj["title"] != "Hello" {
			t.Errorf("patch lost or missed fields: %s", patched.Body)
		}
		if pj["updated"] == created["updated"] && pj["updated"] == nil {
			t.Errorf("updated not set")
		}
		if tag := e.request("GET", "/api/v1/collections/posts/records/"+id, nil).status(200).Header().Get("ETag"); tag != patched.Header().Get("ETag") || tag == etag {
			t.Errorf("ETag on view %q, on patch %q, before %q", tag, patched.Header().Get("ETag"), etag)
		}
		e.request("DELETE", "/api/v1/collections/posts/records/"+id, nil, "If-Match", etag).problem(412)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil).status(200) // the failed delete was undone

		// PUT replaces: fields left out become null (or their default).
		put := e.request("PUT", "/api/v1/collections/posts/records/"+id, map[string]any{"title": "Replaced"}).status(200).json()
		if put["views"] != nil || put["slug"] != nil || put["title"] != "Replaced" || put["status"] != "draft" {
			t.Errorf("PUT did not replace: %v", put)
		}
		if put["created"] != created["created"] {
			t.Errorf("PUT changed created: %v -> %v", created["created"], put["created"])
		}

		e.request("DELETE", "/api/v1/collections/posts/records/"+id, nil).status(204)
		e.request("GET", "/api/v1/collections/posts/records/"+id, nil).problem(404)
		e.request("DELETE", "/api/v1/collections/posts/records/"+id, nil).problem(404)
		e.request("PATCH", "/api/v1/collections/posts/records/"+id, map[string]any{"views": 1}).problem(404)
	})
}

func TestClientChosenID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		e.mustCreate("users", map[string]any{"id": "ada", "name": "Ada"})
		e.request("GET", "/api/v1/collections/users/records/ada", nil).status(200)
		m := e.request("POST", "/api/v1/collections/users/records", map[string]any{"id": "ada", "name": "Other"}).problem(409)
		if !strings.Contains(m["detail"].(string), "id already exists") {
			t.Errorf("detail = %v", m["detail"])
		}
		e.request("PATCH", "/api/v1/collections/users/records/ada", map[string]any{"id": "bob"}).problem(400)
	})
}

func TestRelationsAndExpand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		ada := e.mustCreate("users", map[string]any{"name": "Ada"})
		m := e.request("POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "author": "missing"}).problem(400)
		if fmt.Sprint(m["errors"]) == "" || !strings.Contains(fmt.Sprint(m["errors"]), "not_found") {
			t.Errorf("errors = %v", m["errors"])
		}
		p := e.mustCreate("posts", map[string]any{"title": "x", "author": ada["id"]})
		e.mustCreate("posts", map[string]any{"title": "no author"})

		got := e.request("GET", "/api/v1/collections/posts/records/"+p["id"].(string)+"?expand=author", nil).status(200).json()
		author := got["expand"].(map[string]any)["author"].(map[string]any)
		if author["name"] != "Ada" {
			t.Errorf("expand.author = %v", author)
		}
		list := e.request("GET", "/api/v1/collections/posts/records?expand=author&sort=title&fields=title", nil).status(200).json()
		items := list["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("items = %v", items)
		}
		first := items[0].(map[string]any)
		if first["expand"].(map[string]any)["author"] != nil || first["views"] != nil || first["title"] != "no author" {
			t.Errorf("first = %v", first)
		}
		if _, ok := first["created"]; ok {
			t.Errorf("fields=title still returned created: %v", first)
		}
		e.request("GET", "/api/v1/collections/posts/records?expand=title", nil).problem(400)
		e.request("GET", "/api/v1/collections/posts/records?expand=nope", nil).problem(400)
		e.request("GET", "/api/v1/collections/posts/records?filter="+url.QueryEscape(`author.name = "Ada"`), nil).status(200)
		ids := e.request("GET", "/api/v1/collections/posts/records?filter="+url.QueryEscape(`author.name = "Ada"`), nil).ids()
		if len(ids) != 1 || ids[0] != p["id"] {
			t.Errorf("relation filter = %v", ids)
		}
		// An update checks the relations it sets, not one it leaves as it
		// was: a post whose author was deleted still takes other changes.
		gone := e.mustCreate("users", map[string]any{"name": "Gone"})
		orphan := e.mustCreate("posts", map[string]any{"title": "orphan", "author": gone["id"]})
		e.request("DELETE", "/api/v1/collections/users/records/"+gone["id"].(string), nil).status(204)
		path := "/api/v1/collections/posts/records/" + orphan["id"].(string)
		if got := e.request("PATCH", path, map[string]any{"views": 3}).status(200).json(); got["views"] != float64(3) || got["author"] != gone["id"] {
			t.Errorf("update of the orphan = %v", got)
		}
		m = e.request("PATCH", path, map[string]any{"author": "missing"}).problem(400)
		if !strings.Contains(fmt.Sprint(m["errors"]), "not_found") {
			t.Errorf("errors = %v", m["errors"])
		}
		e.request("PATCH", path, map[string]any{"author": ada["id"]}).status(200)
		// A referenced collection cannot be dropped.
		e.request("DELETE", "/api/v1/collections/users", nil).problem(409)
	})
}

func TestUniqueConflictUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		const n = 8
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.request("POST", "/api/v1/collections/users/records", map[string]any{"name": "x", "email": "same@example.com"})
				codes[i] = r.Code
			}()
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case 201:
				created++
			case 409:
			default:
				t.Errorf("unexpected status %d", c)
			}
		}
		if created != 1 || e.count("users") != 1 {
			t.Errorf("created %d records (count %d), want exactly 1; codes %v", created, e.count("users"), codes)
		}
		m := e.request("POST", "/api/v1/collections/users/records", map[string]any{"name": "y", "email": "same@example.com"}).problem(409)
		if !strings.Contains(fmt.Sprint(m["errors"]), "email") {
			t.Errorf("conflict does not name the field: %v", m)
		}
	})
}

func TestConcurrentWritesAllLand(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		const n = 40
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.request("POST", "/api/v1/collections/users/records", map[string]any{"name": fmt.Sprint("u", i)})
				if r.Code != 201 {
					t.Errorf("create %d: %d %s", i, r.Code, r.Body)
				}
			}()
		}
		wg.Wait()
		if got := e.count("users"); got != n {
			t.Errorf("count = %d, want %d", got, n)
		}
	})
}

func TestIdempotencyKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		body := `{"name":"Ada"}`
		first := e.request("POST", "/api/v1/collections/users/records", body, "Idempotency-Key", "k1").status(201)
		again := e.request("POST", "/api/v1/collections/users/records", body, "Idempotency-Key", "k1").status(201)
		if again.Body.String() != first.Body.String() {
			t.Errorf("replay differs:\n%s\n%s", first.Body, again.Body)
		}
		if again.Header().Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay not marked")
		}
		e.request("POST", "/api/v1/collections/users/records", `{"name":"Bob"}`, "Idempotency-Key", "k1").problem(422)
		if n := e.count("users"); n != 1 {
			t.Errorf("count = %d, want 1", n)
		}
		// Concurrent retries with one key create one record.
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.request("POST", "/api/v1/collections/users/records", `{"name":"Cy"}`, "Idempotency-Key", "k2")
				if r.Code != 201 {
					t.Errorf("concurrent retry: %d %s", r.Code, r.Body)
				}
			}()
		}
		wg.Wait()
		if n := e.count("users"); n != 2 {
			t.Errorf("count = %d, want 2", n)
		}
		// A failed create stores nothing under the key.
		e.request("POST", "/api/v1/collections/users/records", `{"name":""}`, "Idempotency-Key", "k3").problem(400)
		e.request("POST", "/api/v1/collections/users/records", `{"name":"Di"}`, "Idempotency-Key", "k3").status(201)
	})
}

// TestAnonymousIdempotentCreate: anonymous callers may send an
// Idempotency-Key where the create rule lets them create; a retry replays,
// and another client's key never replays the first one's answer.
func TestAnonymousIdempotentCreate(t *testing.T) {
	e := newEnv(t, "sqlite")
	e.request("POST", "/api/v1/collections", map[string]any{"name": "notes", "fields": []any{map[string]any{"name": "t", "type": "text"}},
		"rules": map[string]any{"create": ""}}).status(201)
	body := map[string]any{"t": "hello"}
	first := e.anon("POST", "/api/v1/collections/notes/records", body, "Idempotency-Key", "k1").status(201)
	again := e.anon("POST", "/api/v1/collections/notes/records", body, "Idempotency-Key", "k1").status(201)
	if again.Header().Get("Idempotent-Replayed") != "true" || again.json()["id"] != first.json()["id"] {
		t.Errorf("retry: %s %v", again.Header(), again.Body)
	}
	other := e.from(e.h, "198.51.100.20:1", "POST", "/api/v1/collections/notes/records", body, "Idempotency-Key", "k1").status(201)
	if other.Header().Get("Idempotent-Replayed") != "" || other.json()["id"] == first.json()["id"] {
		t.Errorf("another client's key replayed the first answer: %v", other.Body)
	}
}
