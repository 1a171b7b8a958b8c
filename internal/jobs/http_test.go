package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/store"
)

func TestHTTPHandler(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newService(t, fast(db))
		started := make(chan *Job, 1)
		s.Register("mail", func(ctx context.Context, j *Job) error { return errors.New("smtp down") })
		s.Register("block", blocker(started))
		authorize := func(r *http.Request) error {
			switch r.Header.Get("Authorization") {
			case "Bearer admin":
				return nil
			case "":
				return apperr.New(apperr.Unauthorized, "sign in")
			}
			return errors.New("no jobs scope")
		}
		srv := httptest.NewServer(Handler(s, nil, authorize))
		defer srv.Close()

		do := func(method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer admin")
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("%s %s: body %q is not a JSON object", method, path, raw)
			}
			return res.StatusCode, res.Header, m
		}
		problem := func(method, path, body string, want int, detail string, hdr ...string) {
			t.Helper()
			code, h, m := do(method, path, body, hdr...)
			if code != want || h.Get("Content-Type") != "application/problem+json" || m["status"] != float64(want) ||
				!strings.HasPrefix(fmt.Sprint(m["type"]), "urn:strata:problem:") || !strings.Contains(fmt.Sprint(m["detail"]), detail) {
				t.Errorf("%s %s: %d %s %v; want a %d problem about %q", method, path, code, h.Get("Content-Type"), m, want, detail)
			}
		}

		// Enqueue: a mail job that always fails, with one attempt.
		code, h, m := do("POST", "/api/v1/jobs", `{"kind":"mail","args":{"to":"a@b.c"},"max_attempts":1,"tags":["welcome"],"timeout_ms":5000}`)
		if code != http.StatusCreated || m["state"] != "available" || m["timeout_ms"] != float64(5000) {
			t.Fatalf("enqueue: %d %v", code, m)
		}
		id := int64(m["id"].(float64))
		if h.Get("Location") != fmt.Sprintf("/api/v1/jobs/%d", id) {
			t.Errorf("Location %q", h.Get("Location"))
		}
		problem("POST", "/api/v1/jobs", `{"kind":"nope"}`, 400, `unknown job kind "nope"`)
		problem("POST", "/api/v1/jobs", `{"kind":"mail","extra":1}`, 400, "unknown key")
		problem("POST", "/api/v1/jobs", `{"kind":"mail","priority":500}`, 400, "priority")
		problem("POST", "/api/v1/jobs", `{"kind":`, 400, "malformed JSON")
		problem("POST", "/api/v1/jobs", `{}`, 400, "kind is required")
		problem("POST", "/api/v1/jobs", `{"kind":"mail"}`, 415, "JSON", "Content-Type", "text/plain")
		if code, _, _ := do("POST", "/api/v1/jobs", `{"kind":"mail","unique_key":"k","run_at":"2099-01-01T00:00:00Z"}`); code != 201 {
			t.Fatalf("unique enqueue: %d", code)
		}
		problem("POST", "/api/v1/jobs", `{"kind":"mail","unique_key":"k"}`, 409, "unique key")

		start(t, s)
		waitState(t, s, id, StateDead)

		code, _, m = do("GET", "/api/v1/jobs?state=dead&kind=mail&limit=10", "")
		jobs, _ := m["items"].([]any)
		if code != 200 || len(jobs) != 1 || m["more"] != false {
			t.Fatalf("list dead: %d %v", code, m)
		}
		j := jobs[0].(map[string]any)
		if errs, _ := j["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "smtp down") {
			t.Errorf("dead job errors %v", j["errors"])
		}
		problem("GET", "/api/v1/jobs?state=bogus", "", 400, `unknown state "bogus"`)
		problem("GET", "/api/v1/jobs?limit=x", "", 400, "limit")
		problem("GET", "/api/v1/jobs?sort=name", "", 400, "sort")

		// The filter language, with a cursor; bad ones are problems that
		// name the parameter.
		for range 2 {
			if code, _, m := do("POST", "/api/v1/jobs", `{"kind":"mail","run_at":"2099-01-01T00:00:00Z","args":{"to":"x@y.z"}}`); code != 201 {
				t.Fatalf("enqueue: %d %v", code, m)
			}
		}
		q := "/api/v1/jobs?filter=" + url.QueryEscape(`state = "scheduled" && kind ~ "MAI" && args.to = "x@y.z"`) + "&sort=-created&limit=1"
		code, _, m = do("GET", q, "")
		if items, _ := m["items"].([]any); code != 200 || len(items) != 1 || m["more"] != true || m["next_cursor"] == nil {
			t.Fatalf("filtered list: %d %v", code, m)
		}
		code, _, m = do("GET", q+"&cursor="+url.QueryEscape(m["next_cursor"].(string)), "")
		if items, _ := m["items"].([]any); code != 200 || len(items) != 1 || m["more"] != false || m["next_cursor"] != nil {
			t.Fatalf("second page: %d %v", code, m)
		}
		for _, tc := range []struct{ query, field string }{
			{"filter=" + url.QueryEscape(`state = `), "filter"},
			{"filter=" + url.QueryEscape(`colour = "red"`), "filter"},
			{"sort=-nosuch", "sort"},
			{"cursor=abc.def", "cursor"},
			{"state=lost", "state"},
			{"limit=x", "limit"},
		} {
			code, _, m := do("GET", "/api/v1/jobs?"+tc.query, "")
			errs, _ := m["errors"].([]any)
			if code != 400 || len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field {
				t.Errorf("GET ?%s: %d %v, want a problem on %s", tc.query, code, m, tc.field)
			}
		}

		if code, _, m = do("GET", fmt.Sprintf("/api/v1/jobs/%d", id), ""); code != 200 || m["state"] != "dead" {
			t.Errorf("get: %d %v", code, m)
		}
		problem("GET", "/api/v1/jobs/abc", "", 400, "not a positive integer")
		problem("GET", "/api/v1/jobs/424242", "", 404, "job 424242 not found")

		// Retry the dead job: it runs again now, with one more attempt.
		if code, _, m = do("POST", fmt.Sprintf("/api/v1/jobs/%d/retry", id), ""); code != 200 || m["state"] != "available" || m["max_attempts"] != float64(2) {
			t.Errorf("retry: %d %v", code, m)
		}
		waitState(t, s, id, StateDead)
		problem("POST", "/api/v1/jobs/424242/retry", "", 404, "not found")

		// Cancel a running job; cancelling it again conflicts.
		code, _, m = do("POST", "/api/v1/jobs", `{"kind":"block"}`)
		if code != 201 {
			t.Fatalf("enqueue block: %d %v", code, m)
		}
		bid := int64(m["id"].(float64))
		<-started
		problem("POST", fmt.Sprintf("/api/v1/jobs/%d/retry", bid), "", 409, "running")
		if code, _, m = do("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", bid), ""); code != 200 || m["state"] != "cancelled" {
			t.Errorf("cancel: %d %v", code, m)
		}
		problem("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", bid), "", 409, "cancelled and cannot be cancelled")
		waitFor(t, 2*time.Second, "the cancelled handler to return", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.running) == 0
		})

		// Authorization comes first.
		problem("GET", "/api/v1/jobs", "", 401, "sign in", "Authorization", "")
		problem("POST", fmt.Sprintf("/api/v1/jobs/%d/retry", id), "", 403, "not allowed", "Authorization", "Bearer user")
	})
}
