package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Environment variables read by this package.
const (
	envCluster  = "STRATA_TEST_CLUSTER"      // "1" runs the cluster tests
	envBench    = "STRATA_CLUSTER_BENCH"     // "1" runs the gateway benchmark
	envPostgres = "STRATA_TEST_POSTGRES_URL" // a PostgreSQL server; a database is made on it
	envRedis    = "STRATA_TEST_REDIS_URL"    // a Redis
	envNATS     = "STRATA_TEST_NATS_URL"     // a NATS server with JetStream
)

// The cluster's settings that the tests depend on.
const (
	apiNodes = 3
	// userLimit is every API node's --rate-limit-user: a budget kept in
	// Redis, so it holds across nodes.
	userLimitBurst = 20
	userLimit      = "20/min burst 20"
	// healthInterval and unhealthyThreshold are the gateway's defaults
	// (internal/gateway.Config): a dead node is out after at most
	// healthInterval*unhealthyThreshold.
	healthInterval     = 5 * time.Second
	unhealthyThreshold = 2

	adminEmail    = "admin@cluster.test"
	adminPassword = "a long cluster password"
)

var (
	shared     *cluster
	sharedErr  error
	sharedOnce sync.Once
)

// TestMain stops the shared cluster, if a test started one, after every
// test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

// requireCluster returns the cluster shared by the tests of this package,
// starting it on first use. It skips the test unless STRATA_TEST_CLUSTER=1
// (or STRATA_CLUSTER_BENCH=1 for the benchmark), and when an engine's
// variable is unset, which fails the test under CI instead.
func requireCluster(t *testing.T, gate string) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("slow: starts a cluster of strata processes")
	}
	if os.Getenv(gate) != "1" {
		if gate == envBench {
			t.Skipf("a benchmark run by hand: set %s=1 to run it", gate)
		}
		t.Skipf("slow: set %s=1 to run it (scripts/test runs the cluster tests in a step of their own)", gate)
	}
	var missing []string
	for _, v := range []string{envPostgres, envRedis, envNATS} {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, ", ") + " not set; run the tests with scripts/test, which starts the engines"
		if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	sharedOnce.Do(func() {
		start := time.Now()
		shared, sharedErr = startCluster()
		if sharedErr == nil {
			t.Logf("cluster started in %v (go build %v): gateway %s, api %s %s %s, worker %s", time.Since(start).Round(time.Millisecond),
				shared.buildTime.Round(time.Millisecond), shared.gateway.addr, shared.api[0].addr, shared.api[1].addr, shared.api[2].addr, shared.worker.addr)
		}
	})
	if sharedErr != nil {
		t.Fatalf("start the cluster: %v", sharedErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			shared.dumpLogs(t)
		}
	})
	return shared
}

// cluster is a set of strata processes on one database, Redis and NATS.
type cluster struct {
	dir       string // temporary directory: binary, shared keys, node dirs, logs
	bin       string
	dbName    string // the database made for this cluster
	adminURL  string // the server's URL, to drop the database
	dbURL     string
	redisURL  string
	natsURL   string
	api       []*node
	worker    *node
	gateway   *node
	gwMetrics string // the gateway's metrics and status address
	token     string // a superuser's access token
	key       string // an API key of the superuser with a high rate limit of its own
	buildTime time.Duration
}

// node is one strata process.
type node struct {
	name string
	addr string // host:port of its HTTP listener
	args []string
	bin  string
	logs *logBuf

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// logBuf collects a process's output.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tail returns the last n lines.
func (l *logBuf) tail(n int) string {
	lines := strings.Split(strings.TrimRight(l.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startCluster builds strata, makes a database, initialises it once
// (migrations, keys, a superuser) and starts the API nodes, the worker
// and the gateway, waiting until each is ready.
func startCluster() (c *cluster, err error) {
	dir, err := os.MkdirTemp("", "strata-cluster-")
	if err != nil {
		return nil, err
	}
	c = &cluster{dir: dir, redisURL: os.Getenv(envRedis), natsURL: os.Getenv(envNATS)}
	defer func() {
		if err != nil {
			c.stop()
			c = nil
		}
	}()

	// The build and the database run side by side.
	var buildErr error
	built := make(chan struct{})
	go func() {
		defer close(built)
		start := time.Now()
		buildErr = c.build()
		c.buildTime = time.Since(start)
	}()
	if err := c.createDatabase(); err != nil {
		<-built
		return c, err
	}
	<-built
	if buildErr != nil {
		return c, buildErr
	}

	// Once: migrations, the signing keys and cursor secret, a superuser.
	init := filepath.Join(dir, "init")
	if out, err := c.cli("", "migrate", "up", "--dir", init, "--db", c.dbURL); err != nil {
		return c, fmt.Errorf("migrate up: %w\n%s", err, out)
	}
	if out, err := c.cli(adminPassword+"\n", "superuser", "create", adminEmail, "--password-stdin", "--dir", init, "--db", c.dbURL); err != nil {
		return c, fmt.Errorf("superuser create: %w\n%s", err, out)
	}

	common := []string{"--db", c.dbURL, "--nats-url", c.natsURL, "--redis-url", c.redisURL,
		"--automigrate=false", "--log-format", "json", "--postgres-max-conns", "8"}
	for i := range apiNodes {
		n, err := c.newNode(fmt.Sprintf("api-%d", i+1), init)
		if err != nil {
			return c, err
		}
		// Anonymous and sign-in limits are off: every process of the test
		// run comes from 127.0.0.1 and shares the test Redis, so an IP
		// budget would be shared with whatever else runs. The user limit
		// is per user id, and low, for TestRateLimitAcrossNodes.
		n.args = append(append(n.args, common...), "--roles", "api",
			"--rate-limit", "off", "--rate-limit-auth", "off", "--rate-limit-user", userLimit)
		c.api = append(c.api, n)
	}
	if c.worker, err = c.newNode("worker", init); err != nil {
		return c, err
	}
	c.worker.args = append(append(c.worker.args, common...), "--roles", "worker")

	all := append(append([]*node{}, c.api...), c.worker)
	errs := make(chan error, len(all))
	for _, n := range all {
		go func() { errs <- n.start() }()
	}
	for range all {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return c, err
	}

	if c.gwMetrics, err = freeAddr(); err != nil {
		return c, err
	}
	var ups []string
	for _, n := range c.api {
		ups = append(ups, "http://"+n.addr)
	}
	c.gateway, err = c.startGateway("gateway", c.gwMetrics, ups)
	if err != nil {
		return c, err
	}
	if err := c.waitAvailable(c.gwMetrics, apiNodes, 15*time.Second); err != nil {
		return c, err
	}
	if c.token, err = c.login(adminEmail, adminPassword); err != nil {
		return c, err
	}
	// The tests act through an API key of the superuser with a limit of
	// its own, so that only TestRateLimitAcrossNodes meets the low user
	// limit.
	a, err := do("POST", c.gateway.addr, "/api/v1/keys", c.token,
		map[string]any{"name": "cluster tests", "rate_limit": "100000/min burst 10000"})
	var key struct {
		Key string `json:"key"`
	}
	if err == nil && (a.status != http.StatusCreated || json.Unmarshal(a.body, &key) != nil || key.Key == "") {
		err = fmt.Errorf("create an API key: %d %s", a.status, a.body)
	}
	c.key = key.Key
	return c, err
}

// build builds cmd/strata into the cluster's directory.
func (c *cluster) build() error {
	c.bin = filepath.Join(c.dir, "strata")
	cmd := exec.Command("go", "build", "-o", c.bin, "./cmd/strata")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/strata: %w\n%s", err, out)
	}
	return nil
}

// repoRoot returns the module root: two levels above this package.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// createDatabase makes a fresh database on the test server.
func (c *cluster) createDatabase() error {
	c.adminURL = os.Getenv(envPostgres)
	var b [6]byte
	rand.Read(b[:])
	c.dbName = "strata_cluster_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", c.adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+c.dbName); err != nil {
		c.dbName = ""
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(c.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + c.dbName
	c.dbURL = u.String()
	return nil
}

// cli runs a strata command to its end.
func (c *cluster) cli(stdin string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, append(args, "--config", "")...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cleanEnv is this process's environment without STRATA_ variables, so
// that only the flags configure the nodes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			env = append(env, kv)
		}
	}
	return env
}

// newNode prepares a node with a data directory of its own holding copies
// of the shared keys and cursor secret.
func (c *cluster) newNode(name, init string) (*node, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := filepath.Join(c.dir, name)
	if err := copyTree(filepath.Join(init, "keys"), filepath.Join(d, "keys")); err != nil {
		return nil, err
	}
	if err := copyFile(filepath.Join(init, "secret"), filepath.Join(d, "secret")); err != nil {
		return nil, err
	}
	return &node{name: name, addr: addr, bin: c.bin, logs: &logBuf{},
		args: []string{"serve", "--config", "", "--http", addr, "--dir", d}}, nil
}

// startGateway starts a gateway over upstreams and waits until it is
// ready; its metrics and status are served on metrics.
func (c *cluster) startGateway(name, metrics string, upstreams []string) (*node, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	g := &node{name: name, addr: addr, bin: c.bin, logs: &logBuf{},
		args: []string{"serve", "--config", "", "--roles", "gateway", "--http", addr, "--dir", filepath.Join(c.dir, name),
			"--gateway-upstreams", strings.Join(upstreams, ", "), "--metrics-http", metrics, "--log-format", "json"}}
	return g, g.start()
}

// start starts the process and waits until /readyz answers 200.
func (n *node) start() error {
	n.mu.Lock()
	cmd := exec.Command(n.bin, n.args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = n.logs, n.logs
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() { cmd.Wait(); close(done) }()
	n.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + n.addr + "/readyz")
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited at start:\n%s", n.name, n.logs.tail(30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s:\n%s", n.name, n.logs.tail(30))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// stop sends SIGTERM and waits, then SIGKILL.
func (n *node) stop() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// stop stops every process, drops the database and removes the files.
func (c *cluster) stop() {
	var wg sync.WaitGroup
	nodes := append([]*node{c.gateway, c.worker}, c.api...)
	for _, n := range nodes {
		if n != nil {
			wg.Go(n.stop)
		}
	}
	wg.Wait()
	if c.dbName != "" {
		if db, err := sql.Open("pgx", c.adminURL); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+c.dbName+" WITH (FORCE)")
			cancel()
			db.Close()
		}
	}
	os.RemoveAll(c.dir)
}

// dumpLogs writes the last lines of every node's log to the test log.
func (c *cluster) dumpLogs(t *testing.T) {
	t.Helper()
	for _, n := range append(append([]*node{}, c.api...), c.worker, c.gateway) {
		t.Logf("---- %s (last lines)\n%s", n.name, n.logs.tail(8))
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		return copyFile(p, filepath.Join(to, rel))
	})
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// ---- HTTP helpers ----------------------------------------------------

// client is shared by the tests: keep-alive connections to every node.
var client = &http.Client{
	Timeout: 15 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// do sends a request to addr (host:port) with an optional JSON body and
// headers given as name, value pairs, as token: an API key (sk_...), an
// access token, or "" for none.
func do(method, addr, path, token string, body any, headers ...string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case strings.HasPrefix(token, "sk_"):
		req.Header.Set("X-API-Key", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}, err
}

// must is do for requests that must answer want.
func must(t testing.TB, want int, method, addr, path, token string, body any, headers ...string) answer {
	t.Helper()
	a, err := do(method, addr, path, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, addr, path, err)
	}
	if a.status != want {
		t.Fatalf("%s %s%s: %d, want %d: %s", method, addr, path, a.status, want, a.body)
	}
	return a
}

// login signs a superuser in through the gateway.
func (c *cluster) login(email, password string) (string, error) {
	a, err := do("POST", c.gateway.addr, "/api/v1/admin/login", "", map[string]string{"email": email, "password": password})
	if err != nil {
		return "", err
	}
	var out struct {
		Token string `json:"access_token"`
	}
	if a.status != http.StatusOK || json.Unmarshal(a.body, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("superuser login: %d %s", a.status, a.body)
	}
	return out.Token, nil
}

// uniqueName returns a collection name no other run uses.
func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// publicRules lets everyone do everything, so that reads may be
// anonymous.
var publicRules = map[string]string{"list": "", "view": "", "create": "", "update": "", "delete": ""}

// createCollection creates a collection through the gateway with the
// superuser's key; def is merged into {"name": name}.
func (c *cluster) createCollection(t testing.TB, name string, def map[string]any) {
	t.Helper()
	body := map[string]any{"name": name}
	for k, v := range def {
		body[k] = v
	}
	must(t, http.StatusCreated, "POST", c.gateway.addr, "/api/v1/collections", c.key, body)
}

// total counts a collection's records through the node at addr.
func total(t testing.TB, addr, collection string) int {
	t.Helper()
	a := must(t, http.StatusOK, "GET", addr, "/api/v1/collections/"+collection+"/records?total=true&limit=1", "", nil)
	var out struct {
		Total int `json:"total"`
	}
	a.json(t, &out)
	return out.Total
}

// ---- metrics ---------------------------------------------------------

// scrape returns the Prometheus samples at url whose name is name,
// keyed by their label set as written ("{a=\"b\"}" or "").
func scrape(url, name string) (map[string]float64, error) {
	res, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			labels, rest = rest[:end+1], rest[end+1:]
		} else if !strings.HasPrefix(rest, " ") {
			continue // a longer name with this prefix
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		out[labels] = v
	}
	return out, sc.Err()
}

// sumWhere adds the samples whose labels contain every one of parts.
func sumWhere(samples map[string]float64, parts ...string) float64 {
	var s float64
next:
	for labels, v := range samples {
		for _, p := range parts {
			if !strings.Contains(labels, p) {
				continue next
			}
		}
		s += v
	}
	return s
}

// gatewayStatus is the gateway's status document.
type gatewayStatus struct {
	Available int `json:"available"`
	Upstreams []struct {
		URL     string `json:"url"`
		State   string `json:"state"`
		Healthy bool   `json:"healthy"`
	} `json:"upstreams"`
}

func readGatewayStatus(metricsAddr string) (gatewayStatus, error) {
	var s gatewayStatus
	res, err := client.Get("http://" + metricsAddr + "/gateway/status")
	if err != nil {
		return s, err
	}
	defer res.Body.Close()
	err = json.NewDecoder(res.Body).Decode(&s)
	return s, err
}

// waitAvailable waits until the gateway counts n available upstreams.
func (c *cluster) waitAvailable(metricsAddr string, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		s, err := readGatewayStatus(metricsAddr)
		if err == nil && s.Available == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway does not count %d available upstreams after %v: %+v %v", n, within, s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cores is the number of CPUs the tests share with the cluster.
func cores() int { return runtime.NumCPU() }
