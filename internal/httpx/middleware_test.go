package httpx

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestMiddlewareHeaders: every answer carries a request id and the
// security headers; what one handler adds to them does not reach the
// next answer, though the values are shared.
func TestMiddlewareHeaders(t *testing.T) {
	n := 0
	srv := httptest.NewServer(Middleware(Observe{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.Header().Add("X-Frame-Options", "SAMEORIGIN")
			w.Header().Add("Content-Type", "charset=utf-8")
		}
		RawJSON(w, http.StatusOK, []byte(`{}`))
	})))
	defer srv.Close()
	want := map[string][]string{
		"X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options":        {"DENY"},
		"Referrer-Policy":        {"no-referrer"},
		"Content-Type":           {"application/json"},
	}
	for i := range 2 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("X-Request-Id", "req-1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("X-Request-Id"); got != "req-1" {
			t.Errorf("answer %d: X-Request-Id %q", i+1, got)
		}
		for k, v := range want {
			got := res.Header.Values(k)
			if i == 0 && (k == "X-Frame-Options" || k == "Content-Type") {
				got = got[:min(1, len(got))] // the first handler added to these
			}
			if !slices.Equal(got, v) {
				t.Errorf("answer %d: %s %q, want %q", i+1, k, res.Header.Values(k), v)
			}
		}
	}
}
