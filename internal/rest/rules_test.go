package rest_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ruleWorld sets up members (an auth collection), teams, and four
// collections guarded differently, and signs in two members.
type ruleWorld struct {
	e             *testEnv
	alice, bob    string // access tokens
	aliceID, bob_ string
	team          string
}

func newRuleWorld(t *testing.T, e *testEnv) *ruleWorld {
	t.Helper()
	e.request("POST", "/api/v1/collections", map[string]any{"name": "members", "type": "auth",
		"fields": []any{map[string]any{"name": "role", "type": "select", "values": []string{"admin", "member"}, "protected": true}},
		"rules":  map[string]any{"create": "", "view": "id = @request.auth.id", "list": "id = @request.auth.id", "update": "id = @request.auth.id"}}).status(201)
	e.request("POST", "/api/v1/collections", map[string]any{"name": "teams",
		"fields": []any{map[string]any{"name": "members", "type": "relation", "collection": "members", "multiple": true}}}).status(201)
	owner := "owner = @request.auth.id"
	for _, c := range []map[string]any{
		{"name": "public_notes", "fields": []any{map[string]any{"name": "text", "type": "text"}},
			"rules": map[string]any{"list": "", "view": "", "create": "", "update": "", "delete": ""}},
		{"name": "diaries", "fields": []any{
			map[string]any{"name": "text", "type": "text"},
			map[string]any{"name": "owner", "type": "relation", "collection": "members"}},
			"rules": map[string]any{"list": owner, "view": owner, "create": "@request.auth.id != null && @request.body.owner = @request.auth.id",
				"update": owner + " && (@request.body.owner = null || @request.body.owner = @request.auth.id)", "delete": owner}},
		{"name": "team_docs", "fields": []any{
			map[string]any{"name": "text", "type": "text"},
			map[string]any{"name": "team", "type": "relation", "collection": "teams"}},
			"rules": map[string]any{"list": "team.members ~ @request.auth.id || @request.auth.role = \"admin\"",
				"view": "team.members ~ @request.auth.id || @request.auth.role = \"admin\""}},
		{"name": "admin_only", "fields": []any{map[string]any{"name": "text", "type": "text"}}},
	} {
		e.request("POST", "/api/v1/collections", c).status(201)
	}
	w := &ruleWorld{e: e}
	signIn := func(email string) (string, string) {
		e.anon("POST", "/api/v1/auth/members/register", map[string]any{"email": email, "password": "a long password"}).status(201)
		m := e.anon("POST", "/api/v1/auth/members/login", map[string]any{"email": email, "password": "a long password"}).status(200).json()
		return m["access_token"].(string), m["record"].(map[string]any)["id"].(string)
	}
	w.alice, w.aliceID = signIn("alice@example.com")
	w.bob, w.bob_ = signIn("bob@example.com")
	w.team = e.mustCreate("teams", map[string]any{"members": []string{w.aliceID}})["id"].(string)
	return w
}

// TestRuleMatrix runs every operation on every guarded collection as every
// kind of caller and checks who may do what.
func TestRuleMatrix(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		w := newRuleWorld(t, e)
		callers := map[string]func(method, path string, body any) *response{
			"anonymous": func(m, p string, b any) *response { return e.anon(m, p, b) },
			"alice":     func(m, p string, b any) *response { return e.as(w.alice, m, p, b) },
			"bob":       func(m, p string, b any) *response { return e.as(w.bob, m, p, b) },
			"superuser": func(m, p string, b any) *response { return e.request(m, p, b) },
		}
		// Records made by the superuser, one each.
		note := e.mustCreate("public_notes", map[string]any{"text": "n"})["id"].(string)
		diary := e.mustCreate("diaries", map[string]any{"text": "alice's", "owner": w.aliceID})["id"].(string)
		bobDiary := e.mustCreate("diaries", map[string]any{"text": "bob's", "owner": w.bob_})["id"].(string)
		doc := e.mustCreate("team_docs", map[string]any{"text": "d", "team": w.team})["id"].(string)
		admin := e.mustCreate("admin_only", map[string]any{"text": "a"})["id"].(string)

		type row struct {
			caller, method, path string
			body                 any
			want                 int
		}
		rec := func(c, id string) string { return "/api/v1/collections/" + c + "/records/" + id }
		list := func(c string) string { return "/api/v1/collections/" + c + "/records" }
		rows := []row{
			// public
			{"anonymous", "GET", rec("public_notes", note), nil, 200},
			{"anonymous", "PATCH", rec("public_notes", note), map[string]any{"text": "x"}, 200},
			{"bob", "POST", list("public_notes"), map[string]any{"text": "y"}, 201},
			// owner only
			{"anonymous", "GET", rec("diaries", diary), nil, 404},
			{"bob", "GET", rec("diaries", diary), nil, 404},
			{"alice", "GET", rec("diaries", diary), nil, 200},
			{"superuser", "GET", rec("diaries", diary), nil, 200},
			{"bob", "PATCH", rec("diaries", diary), map[string]any{"text": "hacked"}, 404},
			{"alice", "PATCH", rec("diaries", diary), map[string]any{"text": "mine"}, 200},
			{"alice", "PATCH", rec("diaries", diary), map[string]any{"owner": w.bob_}, 404},
			{"alice", "PUT", rec("diaries", bobDiary), map[string]any{"text": "x", "owner": w.aliceID}, 404},
			{"bob", "DELETE", rec("diaries", diary), nil, 404},
			{"anonymous", "POST", list("diaries"), map[string]any{"text": "x", "owner": w.aliceID}, 403},
			{"bob", "POST", list("diaries"), map[string]any{"text": "x", "owner": w.aliceID}, 403},
			{"bob", "POST", list("diaries"), map[string]any{"text": "x", "owner": w.bob_}, 201},
			// role via relation
			{"alice", "GET", rec("team_docs", doc), nil, 200},
			{"bob", "GET", rec("team_docs", doc), nil, 404},
			{"alice", "PATCH", rec("team_docs", doc), map[string]any{"text": "x"}, 403},
			{"alice", "POST", list("team_docs"), map[string]any{"text": "x"}, 403},
			// admin only
			{"anonymous", "GET", rec("admin_only", admin), nil, 403},
			{"alice", "GET", rec("admin_only", admin), nil, 403},
			{"alice", "GET", list("admin_only"), nil, 403},
			{"alice", "DELETE", rec("admin_only", admin), nil, 403},
			{"superuser", "GET", rec("admin_only", admin), nil, 200},
			// protected field
			{"alice", "POST", list("public_notes"), map[string]any{"text": "x", "created": "2020-01-01T00:00:00Z"}, 400},
		}
		for _, r := range rows {
			got := callers[r.caller](r.method, r.path, r.body)
			if got.Code != r.want {
				t.Errorf("%s %s %s: %d, want %d: %s", r.caller, r.method, r.path, got.Code, r.want, got.Body)
			}
		}
		// The diary that survived is alice's, unchanged owner.
		d := e.request("GET", rec("diaries", diary), nil).status(200).json()
		if d["owner"] != w.aliceID || d["text"] != "mine" {
			t.Errorf("alice's diary: %v", d)
		}
		e.request("GET", rec("diaries", bobDiary), nil).status(200)

		// Lists hold only what the caller may see; totals and pages agree.
		count := func(token, c, filter string) (int, int) {
			path := list(c) + "?total=true&limit=1"
			if filter != "" {
				path += "&filter=" + url.QueryEscape(filter)
			}
			var r *response
			if token == "" {
				r = e.anon("GET", path, nil)
			} else {
				r = e.as(token, "GET", path, nil)
			}
			m := r.status(200).json()
			return int(m["total"].(float64)), len(m["items"].([]any))
		}
		if total, _ := count(w.alice, "diaries", ""); total != 1 {
			t.Errorf("alice sees %d diaries, want 1", total)
		}
		if total, _ := count(w.bob, "diaries", ""); total != 2 { // his own two
			t.Errorf("bob sees %d diaries, want 2", total)
		}
		if total, _ := count("", "diaries", ""); total != 0 {
			t.Errorf("anonymous sees %d diaries", total)
		}
		if total, _ := count(w.bob, "diaries", `text = "mine"`); total != 0 {
			t.Errorf("bob's filter reached alice's diary")
		}
		if total, _ := count(w.alice, "team_docs", ""); total != 1 {
			t.Errorf("alice sees %d team docs", total)
		}
		if total, _ := count(w.bob, "team_docs", ""); total != 0 {
			t.Errorf("bob sees %d team docs", total)
		}
		// A user cannot make herself an admin; the superuser can.
		e.as(w.alice, "PATCH", rec("members", w.aliceID), map[string]any{"role": "admin"}).problem(400)
		e.as(w.bob, "PATCH", rec("members", w.aliceID), map[string]any{"email": "bob2@example.com"}).problem(404)
		e.request("PATCH", rec("members", w.aliceID), map[string]any{"role": "admin"}).status(200)
		// Hidden fields cannot be filtered on by users.
		e.as(w.alice, "GET", list("members")+"?filter="+url.QueryEscape(`password_hash ~ "argon"`), nil).problem(400)
		e.as(w.alice, "GET", list("members")+"?sort=password_hash", nil).problem(400)
		e.request("GET", list("members")+"?filter="+url.QueryEscape(`password_hash ~ "argon"`), nil).status(200)
		// Expanding a relation shows only what the caller may view.
		mine := e.as(w.alice, "GET", rec("diaries", diary)+"?expand=owner", nil).status(200).json()
		if mine["expand"].(map[string]any)["owner"] == nil {
			t.Errorf("alice cannot expand her own member record: %v", mine)
		}
		e.request("PATCH", "/api/v1/collections/diaries", map[string]any{"rules": map[string]any{"view": ""}}).status(200)
		other := e.as(w.bob, "GET", rec("diaries", diary)+"?expand=owner", nil).status(200).json()
		if other["expand"].(map[string]any)["owner"] != nil {
			t.Errorf("bob expanded alice's member record: %v", other)
		}
	})
}

func TestRulesCheckedWhenSaved(t *testing.T) {
	e := newEnv(t, "sqlite")
	for _, c := range []struct{ rule, where string }{
		{"nope = 1", "nope"},
		{"text = ", "at 7"},
		{"@request.nope = 1", "@request"},
		{"@request.auth.shoe_size > 3", "shoe_size"},
	} {
		m := e.request("POST", "/api/v1/collections", map[string]any{"name": "x",
			"fields": []any{map[string]any{"name": "text", "type": "text"}},
			"rules":  map[string]any{"list": c.rule}}).problem(400)
		if !strings.Contains(fmt.Sprint(m["errors"]), "rules.list") || !strings.Contains(fmt.Sprint(m["errors"]), c.where) {
			t.Errorf("rule %q: %v", c.rule, m["errors"])
		}
	}
}

func TestAPIKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		w := newRuleWorld(t, e)
		diary := e.mustCreate("diaries", map[string]any{"text": "alice's", "owner": w.aliceID})["id"].(string)
		note := e.mustCreate("public_notes", map[string]any{"text": "n"})["id"].(string)
		admin := e.mustCreate("admin_only", map[string]any{"text": "a"})["id"].(string)
		rec := func(c, id string) string { return "/api/v1/collections/" + c + "/records/" + id }
		list := func(c string) string { return "/api/v1/collections/" + c + "/records" }
		withKey := func(key, method, path string, body any) *response {
			return e.send(method, path, body, "X-API-Key", key)
		}

		// Alice's key reads her diaries and nothing else.
		k := e.as(w.alice, "POST", "/api/v1/keys", map[string]any{"name": "sync",
			"scopes": []any{map[string]any{"collection": "diaries", "operations": []string{"list", "view"}}}}).status(201).json()
		key := k["key"].(string)
		if !strings.HasPrefix(key, k["prefix"].(string)+"_") || !strings.HasPrefix(key, "sk_") {
			t.Errorf("key %q does not start with its prefix %q", key, k["prefix"])
		}
		withKey(key, "GET", rec("diaries", diary), nil).status(200)
		e.send("GET", rec("diaries", diary), nil, "Authorization", "Bearer "+key).status(200)
		if n := len(withKey(key, "GET", list("diaries"), nil).status(200).json()["items"].([]any)); n != 1 {
			t.Errorf("alice's key lists %d diaries", n)
		}
		withKey(key, "POST", list("diaries"), map[string]any{"text": "x", "owner": w.aliceID}).problem(403)
		withKey(key, "GET", rec("public_notes", note), nil).problem(403)
		withKey(key, "POST", "/api/v1/keys", map[string]any{"name": "more"}).problem(403)
		withKey(key, "GET", list("diaries")+"?expand=owner", nil).status(200)

		// Listing keys never shows a key again.
		keys := e.as(w.alice, "GET", "/api/v1/keys", nil).status(200)
		if strings.Contains(keys.Body.String(), key) || strings.Contains(keys.Body.String(), `"key"`) {
			t.Errorf("the key list shows the key: %s", keys.Body)
		}
		if n := len(e.as(w.bob, "GET", "/api/v1/keys", nil).status(200).json()["items"].([]any)); n != 0 {
			t.Errorf("bob sees %d keys", n)
		}
		e.as(w.bob, "DELETE", "/api/v1/keys/"+k["id"].(string), nil).problem(404)

		// A superuser key scoped to one collection cannot manage collections.
		sk := e.request("POST", "/api/v1/keys", map[string]any{"name": "reader",
			"scopes": []any{map[string]any{"collection": "admin_only", "operations": []string{"view"}}}}).status(201).json()["key"].(string)
		withKey(sk, "GET", rec("admin_only", admin), nil).status(200)
		withKey(sk, "GET", rec("diaries", diary), nil).problem(403)
		withKey(sk, "GET", "/api/v1/collections", nil).problem(403)
		full := e.request("POST", "/api/v1/keys", map[string]any{"name": "ops"}).status(201).json()["key"].(string)
		withKey(full, "GET", "/api/v1/collections", nil).status(200)

		// Bad, revoked and expired keys.
		withKey("sk_nope_nope", "GET", rec("diaries", diary), nil).problem(401)
		withKey(key+"x", "GET", rec("diaries", diary), nil).problem(401)
		e.as(w.alice, "DELETE", "/api/v1/keys/"+k["id"].(string), nil).status(204)
		withKey(key, "GET", rec("diaries", diary), nil).problem(401)
		exp := e.request("POST", "/api/v1/keys", map[string]any{"name": "short", "expires": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}).status(201).json()["key"].(string)
		withKey(exp, "GET", "/api/v1/collections", nil).status(200)
		e.skew = 2 * time.Hour
		withKey(exp, "GET", "/api/v1/collections", nil).problem(401)
		e.skew = 0
		e.request("POST", "/api/v1/keys", map[string]any{"name": "x", "scopes": []any{map[string]any{"collection": "nope", "operations": []string{"fly"}}}}).problem(400)
		e.anon("POST", "/api/v1/keys", map[string]any{"name": "x"}).problem(401)
	})
}
