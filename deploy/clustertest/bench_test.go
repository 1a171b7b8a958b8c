package clustertest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestGatewayBenchmark measures, in one run on the same cluster, GET of
// one record by a closed loop of 50 connections (each sends its next
// request when the last one answered):
//
//   - one API node directly;
//   - through a Strata gateway in front of that node alone;
//   - through nginx in front of that node (proxy_pass with keepalive);
//   - through Strata gateways in front of 2 and of 3 nodes.
//
// It runs only by hand (CI skips it), on an otherwise idle machine:
//
//	STRATA_CLUSTER_BENCH=1 STRATA_TEST_POSTGRES_URL=... STRATA_TEST_REDIS_URL=... \
//	STRATA_TEST_NATS_URL=... go test -count=1 -run TestGatewayBenchmark -v -timeout 20m ./deploy/clustertest/
//
// STRATA_CLUSTER_BENCH_DURATION sets each measurement's length (default
// 10s, after 2s of warm-up). nginx is found on PATH or in /usr/sbin (apt
// install nginx); without it its row is left out. The load generator, the
// nodes, the gateways, nginx and PostgreSQL share the machine's cores, so
// on a small machine the numbers say more about how the CPU is shared than
// about each proxy alone.
func TestGatewayBenchmark(t *testing.T) {
	c := requireCluster(t, envBench)
	dur := 10 * time.Second
	if v := os.Getenv("STRATA_CLUSTER_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("STRATA_CLUSTER_BENCH_DURATION: %v", err)
		}
		dur = d
	}
	const conns = 50

	name := uniqueName("bench")
	c.createCollection(t, name, map[string]any{
		"fields": []map[string]any{{"name": "title", "type": "text"}, {"name": "views", "type": "number"}},
		"rules":  publicRules,
	})
	path := "/api/v1/collections/" + name + "/records"
	var rec struct {
		ID string `json:"id"`
	}
	must(t, http.StatusCreated, "POST", c.gateway.addr, path, c.key, map[string]any{"title": "a benchmark record", "views": 7}).json(t, &rec)
	path += "/" + rec.ID

	var gws []*node
	defer func() {
		for _, g := range gws {
			g.stop()
		}
	}()
	startGW := func(name string, ups ...*node) *node {
		t.Helper()
		m, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		for _, u := range ups {
			urls = append(urls, "http://"+u.addr)
		}
		g, err := c.startGateway(name, m, urls)
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, g)
		if err := c.waitAvailable(m, len(ups), 15*time.Second); err != nil {
			t.Fatal(err)
		}
		return g
	}
	gw1 := startGW("gateway-1", c.api[0])
	gw2 := startGW("gateway-2", c.api[0], c.api[1])

	type target struct{ label, addr string }
	targets := []target{
		{"api-1 directly", c.api[0].addr},
		{"Strata gateway -> api-1", gw1.addr},
	}
	if ng, err := startNginx(t, c.api[0].addr); err != nil {
		t.Logf("nginx left out: %v", err)
	} else {
		targets = append(targets, target{"nginx -> api-1", ng})
	}
	targets = append(targets,
		target{"Strata gateway -> 2 API nodes", gw2.addr},
		target{"Strata gateway -> 3 API nodes", c.gateway.addr})

	var rows []string
	for _, tg := range targets {
		r := closedLoop("http://"+tg.addr+path, conns, 2*time.Second, dur)
		row := fmt.Sprintf("| %s | %.0f | %s | %s | %d |", tg.label, r.rps, ms(r.p50), ms(r.p99), r.errors)
		t.Log(row)
		rows = append(rows, row)
	}
	host, _ := os.Hostname()
	out := fmt.Sprintf("GET one record, closed loop of %d connections, %v per row after 2s warm-up; %d CPUs (%s), %s\n\n"+
		"| target | req/s | p50 | p99 | errors |\n| --- | ---: | ---: | ---: | ---: |\n%s\n",
		conns, dur, cores(), host, time.Now().UTC().Format(time.DateOnly), strings.Join(rows, "\n"))
	fmt.Print("\n" + out)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

type loopResult struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

// closedLoop sends GET url from conns goroutines over as many keep-alive
// connections, each sending its next request when its last one answered,
// for warm then (measured) d.
func closedLoop(url string, conns int, warm, d time.Duration) loopResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	measureFrom, end := start.Add(warm), start.Add(warm+d)
	lat := make([][]time.Duration, conns)
	errs := make([]int, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			buf := make([]time.Duration, 0, 1<<14)
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				res, err := cl.Get(url)
				ok := err == nil && res.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if t0.Before(measureFrom) {
					continue
				}
				if !ok {
					errs[i]++
					continue
				}
				buf = append(buf, time.Since(t0))
			}
			lat[i] = buf
		})
	}
	wg.Wait()
	var all []time.Duration
	var r loopResult
	for i := range conns {
		all = append(all, lat[i]...)
		r.errors += errs[i]
	}
	if len(all) == 0 {
		return r
	}
	slices.Sort(all)
	r.rps = float64(len(all)) / d.Seconds()
	r.p50 = all[len(all)*50/100]
	r.p99 = all[min(len(all)-1, len(all)*99/100)]
	return r
}

// startNginx runs nginx, from the Debian package, with a generated
// configuration: a reverse proxy on a loopback port to upstream with
// keep-alive connections. It is stopped when the test ends.
func startNginx(t *testing.T, upstream string) (string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("no nginx on PATH or in /usr/sbin (apt install nginx)")
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root root;" // its workers must reach the temporary directory
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process on;
worker_processes auto;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[2]s/client_body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	upstream strata {
		server %[3]s;
		keepalive 64;
	}
	server {
		listen %[4]s;
		location / {
			proxy_pass http://strata;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		}
	}
}
`, user, dir, upstream, addr)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	var out logBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					v, _ := exec.Command(bin, "-v").CombinedOutput()
					t.Logf("nginx on %s: %s", addr, strings.TrimSpace(string(v)))
					return addr, nil
				}
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return "", fmt.Errorf("nginx exited: %s %s", out.String(), b)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("nginx does not answer on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
