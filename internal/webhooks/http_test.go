package webhooks

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
)

type apiClient struct {
	t *testing.T
	h http.Handler
}

type apiResponse struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

func (c *apiClient) do(method, path, body string) *apiResponse {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == "FORBIDDEN" {
		req.Method = "GET"
		req.Header.Set("X-Deny", "1")
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, req)
	return &apiResponse{t: c.t, status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

func (r *apiResponse) want(status int) *apiResponse {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func (r *apiResponse) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		r.t.Fatalf("%v: %s", err, r.body)
	}
	return m
}

// problem checks a problem document of status whose detail contains
// detail.
func (r *apiResponse) problem(status int, detail string) {
	r.t.Helper()
	r.want(status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		r.t.Errorf("content type %q", ct)
	}
	if d, _ := r.json()["detail"].(string); !strings.Contains(d, detail) {
		r.t.Errorf("detail %q does not contain %q", d, detail)
	}
}

func TestHandler(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback})
		authorize := func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("no")
			}
			return nil
		}
		c := &apiClient{t: t, h: Handler(e.svc, nil, authorize)}
		recv := newReceiver(t, nil)

		c.do("FORBIDDEN", "/api/v1/webhooks", "").problem(403, "not allowed")
		if items := c.do("GET", "/api/v1/webhooks", "").want(200).json()["items"].([]any); len(items) != 0 {
			t.Errorf("items %v", items)
		}

		// Create: the secret is shown once.
		res := c.do("POST", "/api/v1/webhooks", `{"url": "`+recv.URL+`/in", "description": "mine",
			"events": [{"collection": "posts", "ops": ["update", "create", "create"], "filter": "published = true"}]}`).want(201)
		created := res.json()
		id, _ := created["id"].(string)
		secret, _ := created["secret"].(string)
		if id == "" || !strings.HasPrefix(secret, "whsec_") || res.header.Get("Location") != "/api/v1/webhooks/"+id {
			t.Fatalf("created %v, location %q", created, res.header.Get("Location"))
		}
		if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil || len(key) != 24 {
			t.Errorf("generated secret %q: %d bytes, %v", secret, len(key), err)
		}
		if created["enabled"] != true || created["description"] != "mine" {
			t.Errorf("created %v", created)
		}
		evs, _ := json.Marshal(created["events"])
		if string(evs) != `[{"collection":"posts","filter":"published = true","ops":["create","update"]}]` {
			t.Errorf("events %s", evs)
		}
		got := c.do("GET", "/api/v1/webhooks/"+id, "").want(200)
		if _, ok := got.json()["secret"]; ok || strings.Contains(string(got.body), secret) {
			t.Errorf("GET shows the secret: %s", got.body)
		}
		list := c.do("GET", "/api/v1/webhooks", "").want(200)
		if strings.Contains(string(list.body), secret) || len(list.json()["items"].([]any)) != 1 {
			t.Errorf("list %s", list.body)
		}

		// A given secret is kept.
		given := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
		m := c.do("POST", "/api/v1/webhooks", `{"url": "https://example.com/x", "secret": "`+given+`", "enabled": false,
			"events": [{"collection": "*", "ops": ["*", "delete"]}]}`).want(201).json()
		if m["secret"] != given || m["enabled"] != false {
			t.Errorf("created with a secret: %v", m)
		}
		if ops := m["events"].([]any)[0].(map[string]any)["ops"].([]any); len(ops) != 1 || ops[0] != "*" {
			t.Errorf("ops %v", ops)
		}

		// Bad input.
		for _, tt := range []struct{ body, detail string }{
			{`{"url": "http://169.254.169.254/", "events": [{"collection": "*", "ops": ["*"]}]}`, "url: 169.254.169.254 is a link-local address"},
			{`{"url": "ftp://example.com/", "events": [{"collection": "*", "ops": ["*"]}]}`, `url: the URL's scheme is "ftp"`},
			{`{"url": "https://a:b@example.com/", "events": [{"collection": "*", "ops": ["*"]}]}`, "user information"},
			{`{"url": "https://example.com/", "events": []}`, "events: list at least one"},
			{`{"url": "https://example.com/"}`, "events: list at least one"},
			{`{"url": "https://example.com/", "events": [{"collection": "nope", "ops": ["*"]}]}`, `events[0].collection: no collection named "nope"`},
			{`{"url": "https://example.com/", "events": [{"collection": "posts", "ops": ["upsert"]}]}`, `events[0].ops: "upsert" is not`},
			{`{"url": "https://example.com/", "events": [{"collection": "posts", "ops": []}]}`, `events[0].ops: list at least one`},
			{`{"url": "https://example.com/", "events": [{"collection": "posts", "ops": ["*"], "filter": "nosuchfield = 1"}]}`, "events[0].filter:"},
			{`{"url": "https://example.com/", "events": [{"collection": "posts", "ops": ["*"], "filter": "title ="}]}`, "events[0].filter:"},
			{`{"url": "https://example.com/", "events": [{"collection": "*", "ops": ["*"], "filter": "id != ''"}]}`, "needs a named collection"},
			{`{"url": "https://example.com/", "events": [{"collection": "*", "ops": ["*"]}], "secret": "nope"}`, `secret: the secret must start with "whsec_"`},
			{`{"url": "https://example.com/", "events": [{"collection": "*", "ops": ["*"]}], "secret": "whsec_c2hvcnQ="}`, "secret: the secret must encode 24 to 64 bytes"},
			{`{"url": "https://example.com/", "events": [{"collection": "*", "ops": ["*"]}], "extra": 1}`, `unknown key "extra"`},
			{`{"url": 5}`, "url must be a string"},
			{`[`, "malformed JSON"},
		} {
			c.do("POST", "/api/v1/webhooks", tt.body).problem(400, tt.detail)
		}
		c.do("POST", "/api/v1/webhooks", "").problem(415, "Content-Type")

		// Patch.
		p := c.do("PATCH", "/api/v1/webhooks/"+id, `{"description": "changed", "enabled": false, "events": [{"collection": "comments", "ops": ["delete"]}]}`).want(200).json()
		if p["description"] != "changed" || p["enabled"] != false || p["url"] != recv.URL+"/in" {
			t.Errorf("patched %v", p)
		}
		if _, ok := p["secret"]; ok {
			t.Error("PATCH shows the secret")
		}
		c.do("PATCH", "/api/v1/webhooks/"+id, `{"url": "http://10.0.0.1/"}`).problem(400, "private address")
		c.do("PATCH", "/api/v1/webhooks/"+id, `{"enabled": "yes"}`).problem(400, "enabled must be true or false")
		c.do("PATCH", "/api/v1/webhooks/nope", `{"enabled": true}`).problem(404, `webhook "nope" not found`)
		if n := e.auditCount("webhook.updated", id); n != 1 {
			t.Errorf("%d update audit entries", n)
		}

		// Test ping, then the deliveries.
		d := c.do("POST", "/api/v1/webhooks/"+id+"/test", "").want(200).json()
		if d["success"] != true || d["status"] != float64(200) || d["type"] != TypeTest || d["attempt"] != float64(1) {
			t.Errorf("test delivery %v", d)
		}
		if len(d["response"].(string)) != maxSnippet {
			t.Errorf("response snippet of %d bytes", len(d["response"].(string)))
		}
		reqs := recv.requests()
		if len(reqs) != 1 || reqs[0].Data["type"] != TypeTest {
			t.Fatalf("receiver got %v", reqs)
		}
		checkSignature(t, secret, reqs[0])
		if reqs[0].Data["data"].(map[string]any)["webhook_id"] != id {
			t.Errorf("ping data %s", reqs[0].Body)
		}
		time.Sleep(5 * time.Millisecond)
		c.do("POST", "/api/v1/webhooks/"+id+"/test", "").want(200)
		ds := c.do("GET", "/api/v1/webhooks/"+id+"/deliveries", "").want(200).json()["items"].([]any)
		if len(ds) != 2 || ds[0].(map[string]any)["id"].(float64) <= ds[1].(map[string]any)["id"].(float64) {
			t.Errorf("deliveries %v", ds)
		}
		if ds := c.do("GET", "/api/v1/webhooks/"+id+"/deliveries?limit=1", "").want(200).json()["items"].([]any); len(ds) != 1 {
			t.Errorf("limited deliveries %v", ds)
		}
		c.do("GET", "/api/v1/webhooks/"+id+"/deliveries?limit=x", "").problem(400, "limit")
		c.do("GET", "/api/v1/webhooks/"+id+"/deliveries?limit=501", "").problem(400, "limit")
		c.do("GET", "/api/v1/webhooks/"+id+"/deliveries?limit=0", "").problem(400, "limit")
		c.do("GET", "/api/v1/webhooks/nope/deliveries", "").problem(404, "not found")
		c.do("POST", "/api/v1/webhooks/nope/test", "").problem(404, "not found")
		if ep := e.endpoint(id); ep.Failures != 0 {
			t.Errorf("a test changed the failure count: %+v", ep)
		}

		// Delete.
		c.do("DELETE", "/api/v1/webhooks/"+id, "").want(204)
		c.do("GET", "/api/v1/webhooks/"+id, "").problem(404, "not found")
		c.do("DELETE", "/api/v1/webhooks/"+id, "").problem(404, "not found")
		if n := len(c.do("GET", "/api/v1/webhooks", "").want(200).json()["items"].([]any)); n != 1 {
			t.Errorf("%d left", n)
		}
		if _, err := e.svc.Deliveries(t.Context(), id, 0); apperr.KindOf(err) != apperr.NotFound {
			t.Errorf("deliveries of a deleted endpoint: %v", err)
		}
	})
}
