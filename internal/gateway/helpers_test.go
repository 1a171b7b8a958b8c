package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// backend is an upstream API node on loopback. GET /readyz answers from
// ready; every other request is counted in hits and served by handle, or
// answered with a small JSON naming the backend.
type backend struct {
	name   string
	srv    *httptest.Server
	url    string
	hits   atomic.Int64
	ready  atomic.Bool
	handle http.HandlerFunc
}

func newBackend(t testing.TB, name string, handle http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name, handle: handle}
	b.ready.Store(true)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	b.url = b.srv.URL
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		if !b.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	b.hits.Add(1)
	if b.handle != nil {
		b.handle(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"backend":%q}`, b.name)
}

// deadURL is the URL of a loopback port nothing listens on.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// startGateway builds a gateway from cfg, runs its loops and serves it on
// loopback until the test ends.
func startGateway(t testing.TB, cfg Config) (*Gateway, *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		g.Close()
	})
	return g, srv
}

// client returns an HTTP client whose idle connections close at the end of
// the test.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends a GET and returns the status and body; a failed exchange is
// reported as an error of the test and status 0. It may be called from any
// goroutine.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("GET %s: read body: %v", url, err)
		return 0, ""
	}
	return res.StatusCode, string(body)
}

// backendOf returns the name in a default backend answer.
func backendOf(t testing.TB, body string) string {
	t.Helper()
	var v struct{ Backend string }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("answer %q is not a backend's: %v", body, err)
	}
	return v.Backend
}

// eventually polls cond every few milliseconds until it holds or the
// timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stateOf returns the state of the upstream with url in g's status.
func stateOf(g *Gateway, url string) string {
	for _, u := range g.Status().Upstreams {
		if u.URL == url {
			return u.State
		}
	}
	return "absent"
}

// metricValue is the value of a single counter or gauge, or the sample
// count of a histogram.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	panic("unsupported metric")
}
