package app

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/config"
)

// TestLogsKeepNoSecrets drives sign-up, sign-in, token use, API keys and
// bad credentials with the most verbose logs, and checks that no password,
// token or key reaches them, while each request still gets its one access
// line with route, status and user id.
func TestLogsKeepNoSecrets(t *testing.T) {
	ta := newTestApp(t, "sqlite")
	const password = "plaintext-password-4711"
	ta.do("POST", "/api/v1/collections", `{"name":"members","type":"auth","rules":{"create":""}}`, 201, nil)
	var member struct{ ID string }
	ta.do("POST", "/api/v1/auth/members/register", `{"email":"ada@example.com","password":"`+password+`"}`, 201, &member)
	ta.do("POST", "/api/v1/auth/members/login", `{"email":"ada@example.com","password":"wrong `+password+`"}`, 401, nil)
	var login struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	ta.do("POST", "/api/v1/auth/members/login", `{"email":"ada@example.com","password":"`+password+`"}`, 200, &login)
	ta.do("GET", "/api/v1/auth/members/me", "", 200, nil, "Authorization", "Bearer "+login.AccessToken, "X-Request-Id", "me-request")
	ta.do("POST", "/api/v1/auth/members/refresh", `{"refresh_token":"`+login.RefreshToken+`"}`, 200, nil)
	// Reusing a rotated refresh token is an attack the service logs.
	ta.do("POST", "/api/v1/auth/members/refresh", `{"refresh_token":"`+login.RefreshToken+`"}`, 401, nil)
	var key struct{ Key string }
	ta.do("POST", "/api/v1/keys", `{"name":"ci"}`, 201, &key)
	ta.do("GET", "/api/v1/collections", "", 200, nil, "Authorization", "Bearer "+key.Key)
	ta.do("GET", "/api/v1/collections", "", 401, nil, "Authorization", "Bearer "+key.Key+"x")
	ta.do("GET", "/api/v1/collections", "", 401, nil, "Authorization", "Bearer "+login.AccessToken+"x")
	ta.do("GET", "/api/v1/collections", "", 401, nil, "Authorization", "Basic "+password)

	logs := ta.logs.String()
	if key.Key == "" || login.AccessToken == "" || login.RefreshToken == "" {
		t.Fatal("the flow did not produce credentials to look for")
	}
	for name, secret := range map[string]string{
		"password": password, "access token": login.AccessToken, "refresh token": login.RefreshToken,
		"API key": key.Key, "superuser token": ta.token, "superuser password": "root password 1",
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s reached the logs", name)
		}
	}

	// One access line per request, with what an operator needs.
	var found bool
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if line["msg"] == "request" && line["request_id"] == "me-request" {
			found = true
			if line["route"] != "/api/v1/auth/{collection}/me" || line["status"] != float64(200) ||
				line["user_id"] != member.ID || line["method"] != "GET" || line["bytes"].(float64) <= 0 || line["duration"] == nil {
				t.Errorf("access line: %v", line)
			}
		}
	}
	if !found {
		t.Errorf("no access line for the request me-request:\n%s", logs)
	}
}

// TestDrain: once shutdown starts, /readyz fails for the drain delay while
// the listener still answers, then the server stops.
func TestDrain(t *testing.T) {
	cfg := config.Default()
	cfg.Dir = t.TempDir()
	cfg.DrainDelay = 600 * time.Millisecond
	a, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	status := func(path string) int {
		res, err := http.Get(url + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := status("/readyz"); got != 200 {
		t.Fatalf("/readyz before shutdown: %d", got)
	}
	stop()
	deadline := time.Now().Add(cfg.DrainDelay / 2)
	for a.health.Draining() == false && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", got)
	}
	if got := status("/healthz"); got != 200 {
		t.Errorf("/healthz while draining: %d, want 200", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain delay")
	}
	if got := status("/healthz"); got != 0 {
		t.Errorf("the listener still answers after shutdown: %d", got)
	}
}
