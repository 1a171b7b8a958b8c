package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf collects a command's output while it runs.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveInProcess runs strata with args until the test ends.
func serveInProcess(t *testing.T, args ...string) *syncBuf {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuf{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), out, out, []string{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("strata %v: %v\n%s", args, err, out)
		}
	})
	return out
}

func waitFor200(t *testing.T, url string, logs *syncBuf) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 15s:\n%s", url, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGatewayRole: strata serve --roles gateway proxies to an api node
// and passes requests and answers through, ids and headers included.
func TestGatewayRole(t *testing.T) {
	apiAddr, gwAddr := freeAddr(t), freeAddr(t)
	apiLogs := serveInProcess(t, "serve", "--http", apiAddr, "--dir", t.TempDir(), "--log-format", "json", "--roles", "api")
	waitFor200(t, "http://"+apiAddr+"/readyz", apiLogs)
	gwLogs := serveInProcess(t, "serve", "--roles", "gateway", "--http", gwAddr, "--gateway-upstreams", "http://"+apiAddr,
		"--log-format", "json", "--metrics=false")
	waitFor200(t, "http://"+gwAddr+"/readyz", gwLogs)

	req, _ := http.NewRequest("GET", "http://"+gwAddr+"/api/v1/collections", nil)
	req.Header.Set("X-Request-Id", "through-the-gateway")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var problem map[string]any
	json.NewDecoder(res.Body).Decode(&problem)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || problem["status"] != float64(401) || res.Header.Get("X-Request-Id") != "through-the-gateway" {
		t.Errorf("through the gateway: %d %v %v", res.StatusCode, problem, res.Header)
	}
	// Log lines are written in batches, within telemetry.LogFlushInterval.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(apiLogs.String(), `"request_id":"through-the-gateway"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the api node did not see the request id:\n%s", apiLogs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGatewayRoleNeedsUpstreams: a gateway without upstreams does not start.
func TestGatewayRoleNeedsUpstreams(t *testing.T) {
	_, _, err := runCLI(t, "", "serve", "--roles", "gateway", "--dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "neither gateway_upstreams nor gateway_discover_dns") {
		t.Errorf("err = %v", err)
	}
}
