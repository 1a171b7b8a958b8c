package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestWriteBackLossOnKill measures what a crash costs the write-back
// counters: a server takes increments, is killed with SIGKILL, and is
// started again; the count it stored must lack at most the increments
// acknowledged during the last flush interval (plus the time one flush
// takes) before the kill.
func TestWriteBackLossOnKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const interval = 500 * time.Millisecond
	bin, data, env := binaryWithSuperuser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr + "/api/v1"
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		srv := exec.Command(bin, "serve", "--http", addr, "--dir", data, "--rate-limit", "off",
			"--rate-limit-user", "off", "--cache-flush-interval", interval.String())
		srv.Env = env
		srv.Stdout, srv.Stderr = &logs, &logs
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
		deadline := time.Now().Add(20 * time.Second)
		for {
			if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return srv
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready; logs:\n%s", logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	call := func(method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}

	srv := start()
	_, tok := call("POST", "/admin/login", "", map[string]string{"email": "admin@example.com", "password": "a long enough password"})
	token, _ := tok["access_token"].(string)
	if code, m := call("POST", "/collections", token, map[string]any{
		"name": "posts", "fields": []map[string]any{{"name": "views", "type": "number"}},
		"rules": map[string]any{"view": "", "update": ""},
		"cache": map[string]any{"policy": "write-back", "counters": []string{"views"}},
	}); code != 201 {
		t.Fatalf("create collection: %d %v", code, m)
	}
	code, rec := call("POST", "/collections/posts/records", token, map[string]any{"views": 0})
	if code != 201 {
		t.Fatalf("create record: %d %v", code, rec)
	}
	path := "/collections/posts/records/" + rec["id"].(string)

	// Increments for 2.3 intervals and a bit, then SIGKILL.
	var acks []time.Time
	stop := time.Now().Add(5*interval + interval/3)
	for time.Now().Before(stop) {
		if code, m := call("POST", path+"/increment", "", map[string]any{"views": 1}); code != 200 {
			t.Fatalf("increment: %d %v", code, m)
		}
		acks = append(acks, time.Now())
	}
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	srv.Wait()

	start()
	code, got := call("GET", path, token, nil)
	if code != 200 {
		t.Fatalf("read after restart: %d %v", code, got)
	}
	stored := int(got["views"].(float64))
	sent := len(acks)
	lost := sent - stored
	// What one interval allows: the increments acknowledged since the
	// last flush could have started, with 100ms for the flush itself.
	window := 0
	for _, at := range acks {
		if killed.Sub(at) <= interval+100*time.Millisecond {
			window++
		}
	}
	t.Logf("sent %d increments in %v, stored %d after SIGKILL: lost %d (%.1f%%); one flush interval (%v + 100ms) before the kill held %d",
		sent, stop.Sub(acks[0]).Round(time.Millisecond), stored, lost, 100*float64(lost)/float64(sent), interval, window)
	var maxGap time.Duration
	for i := 1; i < len(acks); i++ {
		maxGap = max(maxGap, acks[i].Sub(acks[i-1]))
	}
	t.Logf("last ack %v before the kill; longest wait between acks %v", killed.Sub(acks[len(acks)-1]), maxGap)
	if lost < 0 {
		t.Fatalf("stored %d increments, more than the %d sent", stored, sent)
	}
	if lost > window {
		t.Fatalf("lost %d increments, more than the %d of one flush interval", lost, window)
	}
}
