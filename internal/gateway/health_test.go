package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestActiveHealthChecks(t *testing.T) {
	a, b := newBackend(t, "a", nil), newBackend(t, "b", nil)
	const interval = 30 * time.Millisecond
	reg := prometheus.NewRegistry()
	g, gw := startGateway(t, Config{
		Upstreams:          []string{a.url, b.url},
		HealthInterval:     interval,
		HealthTimeout:      interval,
		UnhealthyThreshold: 2,
		HealthyThreshold:   2,
		Metrics:            reg,
	})
	cl := client(t)

	b.ready.Store(false)
	start := time.Now()
	// Two failed checks in a row: about two intervals after the flip; the
	// bound leaves room for a loaded machine.
	eventually(t, time.Second, "b to fail its checks", func() bool { return stateOf(g, b.url) == "unhealthy" })
	t.Logf("b taken out %v after it failed (interval %v, threshold 2)", time.Since(start), interval)
	if v := metricValue(g.m.healthy.WithLabelValues(b.url)); v != 0 {
		t.Errorf("healthy gauge of b = %v, want 0", v)
	}
	before := b.hits.Load()
	for range 20 {
		if code, body := get(t, cl, gw.URL+"/"); code != http.StatusOK || backendOf(t, body) != "a" {
			t.Fatalf("with b unhealthy, got %d %s", code, body)
		}
	}
	if b.hits.Load() != before {
		t.Fatal("an unhealthy upstream got requests")
	}

	b.ready.Store(true)
	eventually(t, time.Second, "b to come back", func() bool { return stateOf(g, b.url) == "healthy" })
	if v := metricValue(g.m.healthy.WithLabelValues(b.url)); v != 1 {
		t.Errorf("healthy gauge of b = %v, want 1", v)
	}
	for range 10 {
		get(t, cl, gw.URL+"/")
	}
	if b.hits.Load() == before {
		t.Fatal("b got no requests after it came back")
	}
}

func TestPassiveEjectionWithBackoff(t *testing.T) {
	a := newBackend(t, "a", nil)
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	const cooldown = 200 * time.Millisecond
	g, gw := startGateway(t, Config{
		Upstreams:      []string{a.url, bad.url},
		HealthInterval: -1,
		MaxFails:       3,
		EjectCooldown:  cooldown,
	})
	cl := client(t)
	// POSTs without an Idempotency-Key are not retried, so the client
	// sees each 503.
	post := func() (int, string) {
		t.Helper()
		res, err := cl.Post(gw.URL+"/", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	// Round robin alternates: bad answers 503 (passed through, not retried)
	// three times, then is ejected.
	fails := 0
	for range 6 {
		if code, _ := post(); code == http.StatusServiceUnavailable {
			fails++
		}
	}
	if fails != 3 || bad.hits.Load() != 3 {
		t.Fatalf("client saw %d failures, bad got %d requests; want 3 and 3", fails, bad.hits.Load())
	}
	if s := stateOf(g, bad.url); s != "ejected" {
		t.Fatalf("state of bad = %s, want ejected", s)
	}
	ejected := time.Now()
	if v := metricValue(g.m.ejections.WithLabelValues(bad.url)); v != 1 {
		t.Fatalf("ejections = %v, want 1", v)
	}
	for range 10 {
		code, body := post()
		if backendOf(t, body) != "a" && time.Since(ejected) < cooldown {
			t.Fatalf("while bad is ejected got %d %s", code, body)
		}
	}
	// After the cool-down it is tried again; failing again soon after, it
	// is ejected for twice as long.
	time.Sleep(time.Until(ejected.Add(cooldown + 20*time.Millisecond)))
	for range 6 {
		post()
	}
	if s := stateOf(g, bad.url); s != "ejected" {
		t.Fatalf("state of bad = %s, want ejected again", s)
	}
	u := g.pool.list()[1]
	u.mu.Lock()
	cd := u.lastCooldown
	u.mu.Unlock()
	if cd != 2*cooldown {
		t.Fatalf("second cool-down = %v, want %v", cd, 2*cooldown)
	}
}

// TestErrorsOfOneRequestEjectNobody: 500 answers are a route's bug, not a
// node's failure: they pass through and never take the node out.
func TestErrorsOfOneRequestEjectNobody(t *testing.T) {
	buggy := newBackend(t, "buggy", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	g, gw := startGateway(t, Config{Upstreams: []string{buggy.url}, HealthInterval: -1, MaxFails: 3})
	cl := client(t)
	for range 10 {
		if code, _ := get(t, cl, gw.URL+"/"); code != http.StatusInternalServerError {
			t.Fatalf("got %d, want the upstream's 500", code)
		}
	}
	if s := stateOf(g, buggy.url); s != "healthy" {
		t.Errorf("state after ten 500s = %s, want healthy", s)
	}
}
