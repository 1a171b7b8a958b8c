package rest_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestBadInput sends malformed and invalid requests: each must get the
// expected problem document and leave the stored data as it was.
func TestBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		e.mustCreate("users", map[string]any{"name": "Ada", "email": "ada@example.com"})
		bob := e.mustCreate("users", map[string]any{"name": "Bob", "email": "bob@example.com"})
		post := e.mustCreate("posts", map[string]any{"title": "Keep", "slug": "keep", "views": 1})
		postPath := "/api/v1/collections/posts/records/" + post["id"].(string)
		before := e.request("GET", postPath, nil).status(200).Body.String()
		big := `{"title":"` + strings.Repeat("x", 70<<10) + `"}`
		q := url.QueryEscape

		cases := []struct {
			name, method, path string
			body               any
			headers            []string
			status             int
			detail             string // part of the detail
			field              string // a field named in errors
		}{
			{"malformed json", "POST", "/api/v1/collections/posts/records", `{"title": "x",`, nil, 400, "malformed JSON", ""},
			{"not an object", "POST", "/api/v1/collections/posts/records", `[1,2]`, nil, 400, "JSON object", ""},
			{"null body", "POST", "/api/v1/collections/posts/records", `null`, nil, 400, "JSON object", ""},
			{"empty body", "POST", "/api/v1/collections/posts/records", ` `, nil, 400, "empty", ""},
			{"trailing data", "POST", "/api/v1/collections/posts/records", `{"title":"x"} {}`, nil, 400, "after the top-level value", ""},
			{"wrong type", "POST", "/api/v1/collections/posts/records", map[string]any{"title": 5}, nil, 400, "invalid", "title"},
			{"number as string", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "views": "5"}, nil, 400, "invalid", "views"},
			{"bool as number", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "published": 1}, nil, 400, "invalid", "published"},
			{"unknown field", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "nope": 1}, nil, 400, "invalid", "nope"},
			{"missing required", "POST", "/api/v1/collections/posts/records", map[string]any{"views": 1}, nil, 400, "invalid", "title"},
			{"empty required", "POST", "/api/v1/collections/posts/records", map[string]any{"title": ""}, nil, 400, "invalid", "title"},
			{"below min", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "views": -1}, nil, 400, "invalid", "views"},
			{"over max length", "POST", "/api/v1/collections/posts/records", map[string]any{"title": strings.Repeat("é", 201)}, nil, 400, "invalid", "title"},
			{"pattern", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "slug": "Not OK"}, nil, 400, "invalid", "slug"},
			{"email", "POST", "/api/v1/collections/users/records", map[string]any{"name": "x", "email": "nope"}, nil, 400, "invalid", "email"},
			{"url", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "site": "javascript:alert(1)"}, nil, 400, "invalid", "site"},
			{"select value", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "tags": []string{"rust"}}, nil, 400, "invalid", "tags"},
			{"datetime", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "at": "yesterday"}, nil, 400, "invalid", "at"},
			{"read-only created", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "created": "2020-01-01T00:00:00Z"}, nil, 400, "invalid", "created"},
			{"bad id", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "id": "a b"}, nil, 400, "invalid", "id"},
			{"unique conflict", "POST", "/api/v1/collections/posts/records", map[string]any{"title": "x", "slug": "keep"}, nil, 409, "already exists", "slug"},
			{"unique conflict on update", "PATCH", "/api/v1/collections/users/records/" + bob["id"].(string), map[string]any{"email": "ada@example.com"}, nil, 409, "already exists", "email"},
			{"oversized body", "POST", "/api/v1/collections/posts/records", big, nil, 413, "larger than the limit", ""},
			{"no content type", "POST", "/api/v1/collections/posts/records", `{"title":"x"}`, []string{"Content-Type", ""}, 415, "Content-Type", ""},
			{"wrong content type", "POST", "/api/v1/collections/posts/records", `title=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "Content-Type", ""},
			{"unknown collection", "GET", "/api/v1/collections/nope/records", nil, nil, 404, "does not exist", ""},
			{"unknown collection create", "POST", "/api/v1/collections/nope/records", map[string]any{"a": 1}, nil, 404, "does not exist", ""},
			{"unknown record", "GET", "/api/v1/collections/posts/records/nope", nil, nil, 404, "not found", ""},
			{"wrong method", "POST", postPath, map[string]any{"title": "x"}, nil, 405, "not allowed", ""},
			{"wrong method on list", "DELETE", "/api/v1/collections/posts/records", nil, nil, 405, "not allowed", ""},
			{"unknown route", "GET", "/api/v1/nope", nil, nil, 404, "no route", ""},
			{"filter syntax", "GET", "/api/v1/collections/posts/records?filter=" + q("title = "), nil, nil, 400, "at ", "filter"},
			{"filter unknown field", "GET", "/api/v1/collections/posts/records?filter=" + q("nope = 1"), nil, nil, 400, "nope", "filter"},
			{"filter type", "GET", "/api/v1/collections/posts/records?filter=" + q("views = 'x'"), nil, nil, 400, "views", "filter"},
			{"sort unknown", "GET", "/api/v1/collections/posts/records?sort=nope", nil, nil, 400, "nope", "sort"},
			{"sort syntax", "GET", "/api/v1/collections/posts/records?sort=" + q("title;drop"), nil, nil, 400, "sort", "sort"},
			{"fields unknown", "GET", "/api/v1/collections/posts/records?fields=nope", nil, nil, 400, "nope", "fields"},
			{"expand unknown", "GET", "/api/v1/collections/posts/records?expand=nope", nil, nil, 400, "nope", "expand"},
			{"limit", "GET", "/api/v1/collections/posts/records?limit=0", nil, nil, 400, "limit", ""},
			{"limit too big", "GET", "/api/v1/collections/posts/records?limit=100000", nil, nil, 400, "limit", ""},
			{"limit not a number", "GET", "/api/v1/collections/posts/records?limit=ten", nil, nil, 400, "limit", ""},
			{"total not bool", "GET", "/api/v1/collections/posts/records?total=maybe", nil, nil, 400, "total", ""},
			{"cursor forged", "GET", "/api/v1/collections/posts/records?cursor=eyJxIjoiIiwiayI6W119.AAAA", nil, nil, 400, "cursor", ""},
			{"cursor garbage", "GET", "/api/v1/collections/posts/records?cursor=%25%25", nil, nil, 400, "cursor", ""},
			{"unknown parameter", "GET", "/api/v1/collections/posts/records?filer=x", nil, nil, 400, "unknown query parameter", ""},
			{"patch wrong type", "PATCH", postPath, map[string]any{"views": true}, nil, 400, "invalid", "views"},
			{"put missing required", "PUT", postPath, map[string]any{"views": 2}, nil, 400, "invalid", "title"},
			{"bad collection def", "POST", "/api/v1/collections", map[string]any{"name": "Bad Name"}, nil, 400, "invalid", "name"},
			{"collection def unknown key", "POST", "/api/v1/collections", map[string]any{"name": "x", "colour": "red"}, nil, 400, "unknown key", ""},
			{"collection field type", "POST", "/api/v1/collections", map[string]any{"name": "x", "fields": []any{map[string]any{"name": "a", "type": "blob"}}}, nil, 400, "invalid", "fields[0].type"},
			{"collection exists", "POST", "/api/v1/collections", usersDef, nil, 409, "already exists", ""},
			{"collection relation target", "POST", "/api/v1/collections", map[string]any{"name": "x", "fields": []any{map[string]any{"name": "a", "type": "relation", "collection": "nope"}}}, nil, 400, "invalid", "fields[0].collection"},
			{"collection reserved field", "POST", "/api/v1/collections", map[string]any{"name": "x", "fields": []any{map[string]any{"name": "id", "type": "text"}}}, nil, 400, "invalid", "fields[0].name"},
			{"collection system name", "POST", "/api/v1/collections", map[string]any{"name": "_superusers"}, nil, 400, "invalid", "name"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.request(c.method, c.path, c.body, c.headers...)
				r.t = t
				m := r.problem(c.status)
				if !strings.Contains(strings.ToLower(m["detail"].(string)), strings.ToLower(c.detail)) {
					t.Errorf("detail %q does not mention %q", m["detail"], c.detail)
				}
				if c.field != "" {
					found := false
					errs, _ := m["errors"].([]any)
					for _, fe := range errs {
						if fe.(map[string]any)["field"] == c.field {
							found = true
						}
					}
					if !found {
						t.Errorf("errors %v do not name %q", m["errors"], c.field)
					}
				}
			})
		}
		if after := e.request("GET", postPath, nil).status(200).Body.String(); after != before {
			t.Errorf("bad input changed the stored record:\n%s\n%s", before, after)
		}
		if n := e.count("posts"); n != 1 {
			t.Errorf("posts count = %d, want 1", n)
		}
		if n := e.count("users"); n != 2 {
			t.Errorf("users count = %d, want 2", n)
		}
	})
}

func TestAccess(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		e.anon("GET", "/api/v1/collections", nil).problem(401)
		e.anon("POST", "/api/v1/collections", map[string]any{"name": "x"}).problem(401)
		e.anon("GET", "/api/v1/collections/posts/records", nil).problem(403)
		e.anon("POST", "/api/v1/collections/posts/records", map[string]any{"title": "x"}).problem(403)
		e.anon("GET", "/api/v1/collections", nil, "Authorization", "Bearer not.a.token").problem(401)
		e.anon("GET", "/api/v1/collections", nil, "Authorization", "Basic abc").problem(401)
		m := e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail, "password": "wrong"}).problem(401)
		n := e.anon("POST", "/api/v1/admin/login", map[string]string{"email": "nobody@example.com", "password": "wrong"}).problem(401)
		if m["detail"] != n["detail"] {
			t.Errorf("login answers differ for unknown email: %q vs %q", m["detail"], n["detail"])
		}
		e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail}).problem(400)
		if e.count("posts") != 0 {
			t.Errorf("anonymous create stored a record")
		}
		e.anon("GET", "/healthz", nil).status(200)
		e.anon("GET", "/readyz", nil).status(200)
	})
}
