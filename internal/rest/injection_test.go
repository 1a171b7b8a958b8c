package rest_test

import (
	"net/url"
	"strings"
	"testing"
)

var injections = []string{
	`' OR 1=1 --`,
	`' OR '1'='1`,
	`") OR ("a"="a`,
	`'; DROP TABLE users; --`,
	`"; DROP TABLE users; --`,
	`1; DELETE FROM posts`,
	`x' UNION SELECT id, password_hash, email, created, updated FROM _superusers --`,
	`\'; DROP TABLE posts; --`,
	"title\x00",
	`*/ OR /*`,
}

// TestInjection sends classic SQL injection payloads through every part of
// a request that reaches SQL. Each must be refused or treated as data, and
// nothing beyond the intended rows may be read or changed.
func TestInjection(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		e.mustCreate("users", map[string]any{"name": "Ada", "email": "ada@example.com"})
		secret := e.mustCreate("posts", map[string]any{"title": "secret", "slug": "secret"})
		list := "/api/v1/collections/posts/records"
		for _, p := range injections {
			q := url.QueryEscape
			quoted := strings.ReplaceAll(strings.ReplaceAll(p, `\`, `\\`), `"`, `\"`)
			// As a filter value: valid syntax, matches nothing.
			for _, f := range []string{`title = "` + quoted + `"`, `title ~ "` + quoted + `"`, `meta.x = "` + quoted + `"`, `author.name = "` + quoted + `"`} {
				r := e.request("GET", list+"?filter="+q(f), nil)
				if r.Code == 200 {
					if ids := r.ids(); len(ids) != 0 {
						t.Errorf("filter %s returned %v", f, ids)
					}
				} else {
					r.problem(400)
				}
			}
			// As raw filter text, sort, fields and expand: refused or harmless.
			for _, path := range []string{
				list + "?filter=" + q(p),
				list + "?filter=" + q("title = "+p),
				list + "?sort=" + q(p),
				list + "?sort=" + q("title,"+p),
				list + "?fields=" + q(p),
				list + "?expand=" + q(p),
				"/api/v1/collections/posts/records/" + q(p),
			} {
				r := e.request("GET", path, nil)
				if r.Code != 400 && r.Code != 404 {
					t.Errorf("GET %s: status %d: %s", path, r.Code, r.Body)
				}
			}
			// As collection names.
			for _, m := range []string{"GET", "POST"} {
				r := e.request(m, "/api/v1/collections/"+url.PathEscape(p)+"/records", map[string]any{"title": "x"})
				if r.Code != 404 {
					t.Errorf("%s collection %q: status %d", m, p, r.Code)
				}
			}
			e.request("POST", "/api/v1/collections", map[string]any{"name": p}).problem(400)
			// As a stored value: kept verbatim (NUL is refused on every engine).
			if strings.ContainsRune(p, 0) {
				e.request("POST", list, map[string]any{"title": p}).problem(400)
				continue
			}
			rec := e.mustCreate("posts", map[string]any{"title": p})
			got := e.request("GET", list+"/"+rec["id"].(string), nil).status(200).json()
			if got["title"] != p {
				t.Errorf("stored %q, read back %q", p, got["title"])
			}
			e.request("DELETE", list+"/"+rec["id"].(string), nil).status(204)
		}
		// Everything is where it was.
		if n := e.count("users"); n != 1 {
			t.Errorf("users count = %d", n)
		}
		if n := e.count("posts"); n != 1 {
			t.Errorf("posts count = %d", n)
		}
		e.request("GET", list+"/"+secret["id"].(string), nil).status(200)
		e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail, "password": adminPassword}).status(200)
	})
}
