package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recordingBackend remembers the headers and Host of the last request.
type recordingBackend struct {
	*backend
	mu   sync.Mutex
	hdr  http.Header
	host string
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	rb := &recordingBackend{}
	rb.backend = newBackend(t, "rec", func(w http.ResponseWriter, r *http.Request) {
		rb.mu.Lock()
		rb.hdr, rb.host = r.Header.Clone(), r.Host
		rb.mu.Unlock()
		w.Header().Set("X-Content-Type-Options", "nosniff") // as API nodes do
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.Write([]byte(`{"backend":"rec"}`))
	})
	return rb
}

func (rb *recordingBackend) last() (http.Header, string) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.hdr, rb.host
}

func TestForwardedHeaders(t *testing.T) {
	tests := []struct {
		name        string
		trusted     []netip.Prefix
		wantXFF     string
		wantFwd     func(gwHost string) string
		wantXFProto string
	}{
		{
			name:    "untrusted peer: client headers replaced",
			wantXFF: "127.0.0.1",
			wantFwd: func(h string) string { return `for=127.0.0.1;host="` + h + `";proto=http` },
			// X-Forwarded-Proto from the client is dropped.
			wantXFProto: "http",
		},
		{
			name:        "trusted peer: chains extended",
			trusted:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			wantXFF:     "203.0.113.9, 127.0.0.1",
			wantFwd:     func(h string) string { return `for=203.0.113.9;proto=https, for=127.0.0.1;host="` + h + `";proto=http` },
			wantXFProto: "https",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rb := newRecordingBackend(t)
			_, gw := startGateway(t, Config{Upstreams: []string{rb.url}, HealthInterval: -1, TrustedProxies: tt.trusted})
			gwHost := strings.TrimPrefix(gw.URL, "http://")
			req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/v1/x?q=1", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Forwarded", "for=203.0.113.9;proto=https")
			req.Header.Set("X-Request-Id", "req-42.a_b")
			res, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()

			h, host := rb.last()
			check := func(name, got, want string) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			check("upstream X-Forwarded-For", strings.Join(h.Values("X-Forwarded-For"), ","), tt.wantXFF)
			check("upstream Forwarded", strings.Join(h.Values("Forwarded"), ","), tt.wantFwd(gwHost))
			check("upstream X-Forwarded-Proto", h.Get("X-Forwarded-Proto"), tt.wantXFProto)
			check("upstream X-Forwarded-Host", h.Get("X-Forwarded-Host"), gwHost)
			check("upstream Host", host, gwHost)
			check("upstream X-Request-Id", h.Get("X-Request-Id"), "req-42.a_b")
			check("response X-Request-Id", strings.Join(res.Header.Values("X-Request-Id"), ","), "req-42.a_b")
			check("response X-Content-Type-Options", strings.Join(res.Header.Values("X-Content-Type-Options"), ","), "nosniff")
			check("response X-Frame-Options", res.Header.Get("X-Frame-Options"), "DENY")
			check("response HSTS over plain HTTP", res.Header.Get("Strict-Transport-Security"), "")
		})
	}
}

func TestRequestIDGenerated(t *testing.T) {
	rb := newRecordingBackend(t)
	_, gw := startGateway(t, Config{Upstreams: []string{rb.url}, HealthInterval: -1})
	req, _ := http.NewRequest(http.MethodGet, gw.URL+"/", nil)
	req.Header.Set("X-Request-Id", "bad id with spaces")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h, _ := rb.last()
	id := h.Get("X-Request-Id")
	if len(id) != 24 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("generated id %q, want 24 hex digits", id)
	}
	if got := res.Header.Get("X-Request-Id"); got != id {
		t.Fatalf("response id %q, upstream saw %q", got, id)
	}
}

func TestNoUpstreamIs503Problem(t *testing.T) {
	a := newBackend(t, "a", nil)
	a.ready.Store(false)
	g, gw := startGateway(t, Config{
		Upstreams:          []string{a.url},
		HealthInterval:     10 * time.Millisecond,
		UnhealthyThreshold: 1,
		StatusPath:         DefaultStatusPath,
	})
	eventually(t, time.Second, "a to be out", func() bool { return stateOf(g, a.url) == "unhealthy" })
	res, err := client(t).Get(gw.URL + "/api/v1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var p map[string]any
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p["type"] != "urn:strata:problem:unavailable" || p["title"] != "Service Unavailable" || p["status"] != float64(503) || p["detail"] == "" {
		t.Fatalf("problem %v", p)
	}
	if res.Header.Get("X-Request-Id") == "" || res.Header.Get("Retry-After") == "" {
		t.Fatalf("headers %v", res.Header)
	}
	if a.hits.Load() != 0 {
		t.Fatal("the unhealthy upstream got the request")
	}

	// The status document, served on the status path, says why.
	sres, err := client(t).Get(gw.URL + DefaultStatusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	var st Status
	if err := json.NewDecoder(sres.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if sres.StatusCode != http.StatusServiceUnavailable || st.Available != 0 || len(st.Upstreams) != 1 ||
		st.Upstreams[0].State != "unhealthy" || !strings.Contains(st.Upstreams[0].LastError, "503") || st.Policy != "round_robin" {
		t.Fatalf("status %d %+v", sres.StatusCode, st)
	}
}

func TestUpstreamMetrics(t *testing.T) {
	a := newBackend(t, "a", nil)
	dead := deadURL(t)
	reg := prometheus.NewRegistry()
	g, gw := startGateway(t, Config{Upstreams: []string{a.url, dead}, HealthInterval: -1, Metrics: reg})
	cl := client(t)
	for range 10 {
		get(t, cl, gw.URL+"/")
	}
	m := g.m
	if v := metricValue(m.requests.WithLabelValues(a.url, "200")); v != 10 {
		t.Errorf("requests{a,200} = %v, want 10", v)
	}
	if v := metricValue(m.duration.WithLabelValues(a.url).(prometheus.Metric)); v != 10 {
		t.Errorf("latency samples of a = %v, want 10", v)
	}
	if v := metricValue(m.inFlight.WithLabelValues(a.url)); v != 0 {
		t.Errorf("in flight = %v, want 0", v)
	}
	if v := metricValue(m.healthy.WithLabelValues(a.url)); v != 1 {
		t.Errorf("healthy{a} = %v, want 1", v)
	}
	if v := metricValue(m.healthy.WithLabelValues(dead)); v != 0 {
		t.Errorf("healthy{dead} = %v, want 0 once ejected", v)
	}
	if v := metricValue(m.retries.WithLabelValues(dead)); v < 1 {
		t.Errorf("retries{dead} = %v", v)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{
		"strata_gateway_upstream_requests_total", "strata_gateway_upstream_errors_total",
		"strata_gateway_upstream_response_seconds", "strata_gateway_upstream_in_flight",
		"strata_gateway_upstream_healthy", "strata_gateway_retries_total",
		"strata_gateway_upstream_ejections_total", "strata_gateway_upstreams",
	} {
		if !names[n] {
			t.Errorf("metric %s not exported", n)
		}
	}
}

func TestSlowUpstreamIs504Problem(t *testing.T) {
	release := make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	_, gw := startGateway(t, Config{Upstreams: []string{slow.url}, HealthInterval: -1, ResponseHeaderTimeout: 50 * time.Millisecond})
	res, err := client(t).Get(gw.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `"type":"urn:strata:problem:gateway-timeout"`) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}
