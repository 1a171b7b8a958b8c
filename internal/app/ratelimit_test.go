package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/redistest"
)

func openApp(t *testing.T, set func(*config.Config)) *App {
	t.Helper()
	cfg := config.Default()
	cfg.Dir = t.TempDir()
	set(&cfg)
	a, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a
}

// get sends an anonymous GET from peer.
func get(a *App, peer, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = peer
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	return rec
}

// randomPeer is an address no other test run uses, so that runs sharing
// the test Redis do not share budgets.
func randomPeer() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("[2001:db8:%x:%x:%x::1]:1234", b[0:2], b[2:4], b[4:6])
}

func TestRateLimitDefaults(t *testing.T) {
	a := openApp(t, func(*config.Config) {})
	res := get(a, "192.0.2.1:1234", "/.well-known/jwks.json")
	if res.Code != 200 || res.Header().Get("RateLimit-Policy") != `"anonymous";q=600;w=60` ||
		res.Header().Get("RateLimit") != `"anonymous";r=99;t=1` {
		t.Errorf("%d, RateLimit-Policy %q, RateLimit %q", res.Code, res.Header().Get("RateLimit-Policy"), res.Header().Get("RateLimit"))
	}
	if _, ok := a.Health().Check(context.Background()).Components["redis"]; ok {
		t.Error("a redis readiness component without redis_url")
	}

	off := openApp(t, func(c *config.Config) { c.RateLimit, c.RateLimitUser, c.RateLimitAuth = "off", "off", "off" })
	if res := get(off, "192.0.2.1:1234", "/.well-known/jwks.json"); res.Code != 200 || res.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("limits off: %d %v", res.Code, res.Header())
	}
}

func TestRateLimitRedis(t *testing.T) {
	url := redistest.URL(t)
	a := openApp(t, func(c *config.Config) { c.RedisURL, c.RateLimit = url, "3/min" })
	b := openApp(t, func(c *config.Config) { c.RedisURL, c.RateLimit = url, "3/min" })
	peer := randomPeer()
	for i, node := range []*App{a, b, a} {
		if res := get(node, peer, "/.well-known/jwks.json"); res.Code != 200 || res.Header().Get("RateLimit") != fmt.Sprintf(`"anonymous";r=%d;t=%d`, 2-i, 20*(i+1)) {
			t.Errorf("request %d: %d, RateLimit %q", i, res.Code, res.Header().Get("RateLimit"))
		}
	}
	if res := get(b, peer, "/.well-known/jwks.json"); res.Code != http.StatusTooManyRequests {
		t.Errorf("the shared budget is spent, yet %d", res.Code)
	}
}

// A Redis that does not answer: fail-open serves and stays ready;
// fail-closed refuses with 503 and is not ready.
func TestRateLimitRedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "redis://" + ln.Addr().String() + "/0?dial_timeout=100ms&max_retries=-1"
	ln.Close()

	open := openApp(t, func(c *config.Config) { c.RedisURL = url })
	if res := get(open, "192.0.2.1:1234", "/.well-known/jwks.json"); res.Code != 200 {
		t.Errorf("fail-open: %d %s", res.Code, res.Body)
	}
	if rep := open.Health().Check(context.Background()); !rep.Ready() {
		t.Errorf("fail-open is not ready without redis: %+v", rep)
	}

	closed := openApp(t, func(c *config.Config) { c.RedisURL, c.RateLimitFail = url, "closed" })
	res := get(closed, "192.0.2.1:1234", "/.well-known/jwks.json")
	if res.Code != http.StatusServiceUnavailable || res.Header().Get("Retry-After") == "" {
		t.Errorf("fail-closed: %d %v %s", res.Code, res.Header(), res.Body)
	}
	rep := closed.Health().Check(context.Background())
	if rep.Ready() || rep.Components["redis"].Status != "down" {
		t.Errorf("fail-closed is ready without redis: %+v", rep)
	}
	// Health checks are never limited.
	if res := get(closed, "192.0.2.1:1234", "/healthz"); res.Code != 200 || strings.Contains(res.Header().Get("RateLimit-Policy"), "anonymous") {
		t.Errorf("/healthz: %d %v", res.Code, res.Header())
	}
}
