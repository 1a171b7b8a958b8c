package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestOwnHealth: /healthz and /readyz at the gateway are its own: alive
// always, ready while an upstream is available; they never reach the
// upstreams.
func TestOwnHealth(t *testing.T) {
	var reached bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "strata-gateway-health" {
			reached = true
		}
	}))
	g, err := New(Config{Upstreams: []string{up.URL}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		w := httptest.NewRecorder()
		g.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
	if reached {
		t.Error("a health request reached the upstream")
	}
	up.Close()
	g2, err := New(Config{Upstreams: []string{"http://127.0.0.1:1"}, HealthInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	w := httptest.NewRecorder()
	g2.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != 200 {
		t.Errorf("/healthz with no upstream: %d, want 200", w.Code)
	}
}
