package rest_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/strata-dev/strata/internal/records"
)

func fieldID(t *testing.T, col map[string]any, name string) string {
	t.Helper()
	for _, f := range col["fields"].([]any) {
		f := f.(map[string]any)
		if f["name"] == name {
			return f["id"].(string)
		}
	}
	t.Fatalf("no field %s in %v", name, col)
	return ""
}

func TestSchemaChanges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		p := e.mustCreate("posts", map[string]any{"title": "One", "views": 5, "slug": "one"})
		e.mustCreate("posts", map[string]any{"title": "Two", "views": 7, "slug": "two"})
		col := e.request("GET", "/api/v1/collections/posts", nil).status(200).json()
		titleID := fieldID(t, col, "title")

		// Rename title to headline (by id), drop site, add summary, add an index.
		fields := []any{}
		for _, f := range col["fields"].([]any) {
			f := f.(map[string]any)
			switch f["name"] {
			case "site":
				continue
			case "title":
				f["name"] = "headline"
			}
			fields = append(fields, f)
		}
		fields = append(fields, map[string]any{"name": "summary", "type": "text"})
		next := e.request("PATCH", "/api/v1/collections/posts", map[string]any{
			"fields":  fields,
			"indexes": []any{map[string]any{"fields": []string{"published", "views"}}, map[string]any{"fields": []string{"headline"}}},
		}).status(200).json()
		if fieldID(t, next, "headline") != titleID {
			t.Errorf("rename changed the field id")
		}
		rec := e.request("GET", "/api/v1/collections/posts/records/"+p["id"].(string), nil).status(200).json()
		if rec["headline"] != "One" || rec["summary"] != nil {
			t.Errorf("after rename: %v", rec)
		}
		if _, ok := rec["site"]; ok {
			t.Errorf("dropped field still returned: %v", rec)
		}
		if _, ok := rec["title"]; ok {
			t.Errorf("old name still returned: %v", rec)
		}
		e.mustCreate("posts", map[string]any{"headline": "Three", "summary": "s"})

		// A change that existing rows refuse (unique over duplicates) fails
		// and leaves schema and data as they were.
		e.mustCreate("posts", map[string]any{"headline": "Three"})
		before := e.request("GET", "/api/v1/collections/posts", nil).status(200).Body.String()
		dup := []any{}
		for _, f := range next["fields"].([]any) {
			f := f.(map[string]any)
			if f["name"] == "headline" {
				f["unique"] = true
			}
			dup = append(dup, f)
		}
		dup = append(dup, map[string]any{"name": "extra", "type": "number"})
		m := e.request("PATCH", "/api/v1/collections/posts", map[string]any{"fields": dup}).problem(409)
		if !strings.Contains(m["detail"].(string), "duplicate") {
			t.Errorf("detail = %v", m["detail"])
		}
		after := e.request("GET", "/api/v1/collections/posts", nil).status(200).Body.String()
		if before != after {
			t.Errorf("failed change altered the schema:\n%s\n%s", before, after)
		}
		e.request("POST", "/api/v1/collections/posts/records", map[string]any{"headline": "x", "extra": 1}).problem(400)
		if n := e.count("posts"); n != 4 {
			t.Errorf("count = %d, want 4", n)
		}

		// Type changes are refused.
		bad := []any{map[string]any{"id": titleID, "name": "headline", "type": "number"}}
		e.request("PATCH", "/api/v1/collections/posts", map[string]any{"fields": bad}).problem(400)
		e.request("PATCH", "/api/v1/collections/posts", map[string]any{"name": "articles"}).problem(400)
		e.request("PATCH", "/api/v1/collections/nope", map[string]any{"fields": bad}).problem(404)

		// Every change was recorded and written as a migration file.
		st, err := e.recs.Status(context.Background(), e.migDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) != 3 {
			t.Fatalf("migrations = %+v, want 3 (create users, create posts, update posts)", st)
		}
		for _, m := range st {
			if m.Applied == nil || !m.InDir {
				t.Errorf("migration %s: applied %v, in dir %v", m.ID, m.Applied, m.InDir)
			}
		}

		// Drop a collection.
		e.request("POST", "/api/v1/collections", map[string]any{"name": "tmp"}).status(201)
		e.request("DELETE", "/api/v1/collections/tmp", nil).status(204)
		e.request("GET", "/api/v1/collections/tmp", nil).problem(404)
		e.request("GET", "/api/v1/collections/tmp/records", nil).problem(404)
	})
}

// TestMigrationsReplay applies the migration files written by one database
// to a fresh one, then undoes them.
func TestMigrationsReplay(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		col := e.request("GET", "/api/v1/collections/posts", nil).status(200).json()
		fields := col["fields"].([]any)
		fields = append(fields, map[string]any{"name": "summary", "type": "text"})
		e.request("PATCH", "/api/v1/collections/posts", map[string]any{"fields": fields}).status(200)
		want := e.request("GET", "/api/v1/collections", nil).status(200).json()

		fresh := newEnv(t, e.engine)
		ctx := context.Background()
		applied, err := fresh.recs.Up(ctx, e.migDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 3 {
			t.Fatalf("applied %v, want 3", applied)
		}
		got := fresh.request("GET", "/api/v1/collections", nil).status(200).json()
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if string(wj) != string(gj) {
			t.Errorf("replayed schema differs:\n%s\n%s", wj, gj)
		}
		fresh.mustCreate("posts", map[string]any{"title": "t", "summary": "s"})
		if again, err := fresh.recs.Up(ctx, e.migDir); err != nil || len(again) != 0 {
			t.Errorf("second up applied %v, %v", again, err)
		}

		id, err := fresh.recs.Down(ctx)
		if err != nil || !strings.HasSuffix(id, "update_posts") {
			t.Fatalf("down = %q, %v", id, err)
		}
		fresh.request("POST", "/api/v1/collections/posts/records", map[string]any{"title": "t", "summary": "s"}).problem(400)
		for range 2 {
			if _, err := fresh.recs.Down(ctx); err != nil {
				t.Fatal(err)
			}
		}
		fresh.request("GET", "/api/v1/collections/users", nil).problem(404)
		if id, err := fresh.recs.Down(ctx); id != "" || err != nil {
			t.Errorf("down with nothing applied = %q, %v", id, err)
		}
	})
}

func TestMigrationFileErrors(t *testing.T) {
	e := newEnv(t, "sqlite")
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("20260101000000000000_x.json", `{"id":"20260101000000000000_x","up":[{"op":"create","collection":{"name":"Bad Name"}}],"down":[]}`)
	_, err := e.recs.Up(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "20260101000000000000_x") {
		t.Fatalf("bad migration: err = %v", err)
	}
	e.request("GET", "/api/v1/collections", nil).status(200)
	if n := len(e.recs.Collections()); n != 0 {
		t.Errorf("a failed migration left %d collections", n)
	}
	write("20260101000000000000_x.json", `{"id":"20260101000000000000_x","up":[],"oops":1}`)
	if _, err := e.recs.Up(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("unknown key: err = %v", err)
	}
}

func FuzzParseMigration(f *testing.F) {
	f.Add([]byte(`{"id":"20260101000000000000_x","up":[{"op":"delete","name":"a"}],"down":[]}`))
	f.Add([]byte(`{"id":"1","up":[]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := records.ParseFile(data)
		if err == nil && (len(m.Up) == 0 || m.ID == "") {
			t.Fatalf("accepted an incomplete migration: %+v", m)
		}
	})
}

func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t, "sqlite")
	withBlog(e)
	e.request("POST", "/api/v1/collections", map[string]any{"name": "notes", "type": "document"}).status(201)
	body := e.anon("GET", "/api/v1/openapi.json", nil).status(200).Body.Bytes()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	for _, name := range []string{"users", "posts", "notes", "posts_input", "posts_page", "Problem"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
	if doc.Paths.Find("/api/v1/collections/posts/records/{id}") == nil {
		t.Errorf("no path for a posts record")
	}
}

func TestAuthCollectionSystemFields(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		col := e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth",
			"fields": []any{map[string]any{"name": "nick", "type": "text"}}}).status(201).json()
		for _, name := range []string{"email", "verified", "password_hash"} {
			fieldID(t, col, name)
		}
		e.request("POST", "/api/v1/collections", map[string]any{"name": "bad", "type": "auth",
			"fields": []any{map[string]any{"name": "email", "type": "text"}}}).problem(400)
		e.request("POST", "/api/v1/collections", map[string]any{"name": "bad", "type": "base",
			"fields": []any{map[string]any{"name": "x", "type": "text", "system": true}}}).problem(400)

		// email is required and unique; password_hash is never written or shown.
		e.request("POST", "/api/v1/collections/members/records", map[string]any{"nick": "a"}).problem(400)
		e.request("POST", "/api/v1/collections/members/records", map[string]any{"email": "a@example.com", "password_hash": "x"}).problem(400)
		r := e.mustCreate("members", map[string]any{"email": "a@example.com", "nick": "a"})
		if _, ok := r["password_hash"]; ok {
			t.Errorf("hidden field returned: %v", r)
		}
		if r["verified"] != nil && r["verified"] != false {
			t.Errorf("verified = %v", r["verified"])
		}
		e.request("POST", "/api/v1/collections/members/records", map[string]any{"email": "a@example.com"}).problem(409)
		got := e.request("GET", "/api/v1/collections/members/records?fields=password_hash", nil)
		if strings.Contains(got.Body.String(), "password_hash\":") {
			t.Errorf("fields= revealed a hidden field: %s", got.Body)
		}

		// System fields survive a change that leaves them out, and cannot be renamed.
		next := e.request("PATCH", "/api/v1/collections/members", map[string]any{"fields": []any{map[string]any{"name": "nick", "type": "text"}, map[string]any{"name": "bio", "type": "text"}}}).status(200).json()
		for _, name := range []string{"email", "verified", "password_hash", "nick", "bio"} {
			fieldID(t, next, name)
		}
		e.request("PATCH", "/api/v1/collections/members", map[string]any{"fields": []any{map[string]any{"id": fieldID(t, next, "email"), "name": "mail", "type": "email"}}}).problem(400)
		e.request("GET", "/api/v1/collections/members/records/"+r["id"].(string), nil).status(200)
	})
}
