package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGetRetriedOnDeadUpstream(t *testing.T) {
	dead := deadURL(t)
	live := newBackend(t, "live", nil)
	g, gw := startGateway(t, Config{Upstreams: []string{dead, live.url}, HealthInterval: -1, MaxFails: 3})
	cl := client(t)
	for i := range 10 {
		if code, body := get(t, cl, gw.URL+"/x"); code != http.StatusOK || backendOf(t, body) != "live" {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	if n := metricValue(g.m.retries.WithLabelValues(dead)); n < 1 {
		t.Errorf("retries from the dead upstream = %v, want at least 1", n)
	}
	if n := metricValue(g.m.errors.WithLabelValues(dead, "connect")); n < 1 {
		t.Errorf("connect errors of the dead upstream = %v, want at least 1", n)
	}
	if s := stateOf(g, dead); s != "ejected" {
		t.Errorf("dead upstream is %s after its failures, want ejected", s)
	}
}

// failing answers like an API node in trouble, after reading the whole
// request body: with a status, or by dropping the connection.
func failing(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	}
}

func echo(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.Write(body)
	}
}

func TestRetrySafety(t *testing.T) {
	payload := strings.Repeat(`{"title":"a record"}`, 20) // 400 bytes
	tests := []struct {
		name         string
		fail         int // status of the failing upstream; 0 drops the connection
		key          bool
		maxRetryBody int64
		wantStatus   int
		wantRetried  bool
	}{
		{name: "POST dropped connection not retried", fail: 0, wantStatus: http.StatusBadGateway},
		{name: "POST 503 not retried", fail: 503, wantStatus: http.StatusServiceUnavailable},
		{name: "POST with key retried after dropped connection", fail: 0, key: true, wantStatus: http.StatusOK, wantRetried: true},
		{name: "POST with key retried after 503", fail: 503, key: true, wantStatus: http.StatusOK, wantRetried: true},
		{name: "POST with key and a body over the bound not retried", fail: 503, key: true, maxRetryBody: 100, wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newBackend(t, "bad", failing(tt.fail))
			good := newBackend(t, "good", echo("good"))
			_, gw := startGateway(t, Config{
				Upstreams:      []string{bad.url, good.url}, // round robin starts with bad
				HealthInterval: -1,
				MaxRetryBody:   tt.maxRetryBody,
			})
			req, _ := http.NewRequest(http.MethodPost, gw.URL+"/api/v1/collections/posts/records", strings.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			if tt.key {
				req.Header.Set("Idempotency-Key", "k-1")
			}
			res, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, body, tt.wantStatus)
			}
			if bad.hits.Load() != 1 {
				t.Fatalf("failing upstream got %d requests, want 1", bad.hits.Load())
			}
			if !tt.wantRetried {
				if good.hits.Load() != 0 {
					t.Fatalf("request was retried on the good upstream")
				}
				return
			}
			if good.hits.Load() != 1 {
				t.Fatalf("good upstream got %d requests, want 1", good.hits.Load())
			}
			if string(body) != payload {
				t.Fatalf("retried body arrived as %q, want %q", body, payload)
			}
		})
	}
}

func TestPostRetriedWhenNothingWasSent(t *testing.T) {
	good := newBackend(t, "good", echo("good"))
	_, gw := startGateway(t, Config{Upstreams: []string{deadURL(t), good.url}, HealthInterval: -1})
	res, err := client(t).Post(gw.URL+"/api/v1/x", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != `{"a":1}` {
		t.Fatalf("POST to a dead then a live upstream: %d %q", res.StatusCode, body)
	}
}

func TestPutBodyIntactAcrossRetries(t *testing.T) {
	bad1 := newBackend(t, "bad1", failing(502))
	bad2 := newBackend(t, "bad2", failing(504))
	good := newBackend(t, "good", echo("good"))
	_, gw := startGateway(t, Config{Upstreams: []string{bad1.url, bad2.url, good.url}, HealthInterval: -1, Retries: 2})
	payload := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB, chunked
	req, _ := http.NewRequest(http.MethodPut, gw.URL+"/files/x", io.MultiReader(bytes.NewReader(payload)))
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Equal(body, payload) {
		t.Fatalf("PUT after two failures: status %d, %d bytes back of %d", res.StatusCode, len(body), len(payload))
	}
}

func TestUpstreamKilledUnderLoad(t *testing.T) {
	a := newBackend(t, "a", nil)
	b := newBackend(t, "b", nil)
	g, gw := startGateway(t, Config{
		Upstreams:      []string{a.url, b.url},
		HealthInterval: 50 * time.Millisecond,
		HealthTimeout:  time.Second,
		MaxFails:       2,
		EjectCooldown:  10 * time.Second,
	})
	cl := client(t)
	bUp := g.pool.list()[1]

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := cl.Get(gw.URL + "/api/v1/records")
				if err != nil {
					failed.Add(1)
					t.Errorf("GET: %v", err)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
					t.Errorf("GET: status %d", res.StatusCode)
					continue
				}
				ok.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if b.hits.Load() == 0 {
		t.Fatal("b got no traffic before it was stopped")
	}
	b.srv.Close()
	eventually(t, time.Second, "b to be taken out", func() bool { return stateOf(g, b.url) != "healthy" })
	time.Sleep(50 * time.Millisecond)
	attempts := bUp.requests.Load()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d GETs failed at the client", n, n+ok.Load())
	}
	if n := bUp.requests.Load() - attempts; n != 0 {
		t.Fatalf("%d attempts went to the stopped upstream after it was taken out", n)
	}
	t.Logf("%d GETs, all answered; %v retried", ok.Load(), metricValue(g.m.retries.WithLabelValues(b.url)))
}
