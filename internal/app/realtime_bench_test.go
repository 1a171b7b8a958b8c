package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/broker/nats/natstest"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkRealtimeLatency is the time from sending a create to the
// subscriber receiving its event, through the database, the outbox, the
// relay, the broker and the hub: on embedded defaults, and across two
// nodes sharing PostgreSQL and a NATS server (write on one, subscriber on
// the other). It reports the median and 99th percentile.
func BenchmarkRealtimeLatency(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		s := serve(b, "sqlite")
		benchLatency(b, s, s)
	})
	b.Run("two-nodes", func(b *testing.B) {
		natsURL := natstest.Env(b, natstest.EnvURL)
		if len(storetest.Engines(b)) < 2 {
			b.Skip("needs PostgreSQL")
		}
		dbURL := storetest.Schema(b)
		shared := func(c *config.Config) { c.DB, c.NATSURL = dbURL, natsURL }
		benchLatency(b, serve(b, "sqlite", shared), serve(b, "sqlite", shared))
	})
}

func benchLatency(b *testing.B, writer, reader *serving) {
	writer.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	events, _ := reader.sse(b, reader.token, "subscribe=posts")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		writer.do("POST", "/api/v1/collections/posts/records", `{"title":"t`+strconv.Itoa(i)+`"}`, 201, nil)
		next(b, events)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkRealtimeIdleMemory opens STRATA_BENCH_CONNS (default 10,000)
// idle SSE connections to a strata process and reports the growth of its
// resident memory per connection.
func BenchmarkRealtimeIdleMemory(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("STRATA_BENCH_CONNS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "strata")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", bin, "./cmd/strata")
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	su := exec.Command(bin, "superuser", "create", "root@example.com", "--password-stdin", "--dir", data)
	su.Stdin = strings.NewReader("root password 1\n")
	if out, err := su.CombinedOutput(); err != nil {
		b.Fatalf("superuser: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(bin, "serve", "--dir", data, "--http", addr, "--log-level", "warn", "--rate-limit-user", "off")
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if res, err := client.Get(base + "/readyz"); err == nil && res.StatusCode == 200 {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not ready:\n%s", logs.String())
		}
	}
	call := func(method, path, token, body string, out any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil || res.StatusCode >= 300 {
			b.Fatalf("%s %s: %v %v", method, path, err, res)
		}
		defer res.Body.Close()
		if out != nil {
			json.NewDecoder(res.Body).Decode(out)
		}
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	call("POST", "/api/v1/admin/login", "", `{"email":"root@example.com","password":"root password 1"}`, &login)
	call("POST", "/api/v1/collections", login.AccessToken, `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, nil)

	open := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/realtime?subscribe=posts", nil)
		req.Header.Set("Authorization", "Bearer "+login.AccessToken)
		tr := &http.Transport{DisableKeepAlives: true}
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "retry:") {
			return fmt.Errorf("first line %q: %v", line, err)
		}
		go func() { <-ctx.Done(); res.Body.Close() }()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One connection first, so that what every connection shares is
	// already allocated.
	if err := open(ctx); err != nil {
		b.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	before := rss(b, srv.Process.Pid)
	b.ResetTimer()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for range n - 1 {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := open(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	time.Sleep(time.Second)
	after := rss(b, srv.Process.Pid)
	b.ReportMetric(float64(after-before)/float64(n-1), "B/conn")
	b.ReportMetric(float64(after)/(1<<20), "MiB-rss")
}

func rss(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
