package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests run in this order; TestNodeKilledUnderLoad is last because it
// kills a node (and starts it again).

// TestWritesLandOnce: creates sent concurrently through the gateway, each
// Idempotency-Key twice at once and then once more to every node directly,
// make exactly one record per key, the same one in every answer, and every
// node counts the same records.
func TestWritesLandOnce(t *testing.T) {
	c := requireCluster(t, envCluster)
	name := uniqueName("writes")
	c.createCollection(t, name, map[string]any{
		"fields": []map[string]any{{"name": "n", "type": "number"}},
		"rules":  publicRules,
	})
	path := "/api/v1/collections/" + name + "/records"
	const n = 120

	ids := make([]map[string]int, n) // per key: record id -> answers
	var mu sync.Mutex
	var failures []string
	send := func(addr string, i int) {
		a, err := do("POST", addr, path, c.key, map[string]any{"n": i}, "Idempotency-Key", fmt.Sprintf("%s-%d", name, i))
		var rec struct {
			ID string `json:"id"`
		}
		if err == nil && a.status == http.StatusCreated {
			err = json.Unmarshal(a.body, &rec)
		} else if err == nil {
			err = fmt.Errorf("%d %s", a.status, a.body)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil || rec.ID == "" {
			failures = append(failures, fmt.Sprintf("key %d via %s: %v", i, addr, err))
			return
		}
		if ids[i] == nil {
			ids[i] = map[string]int{}
		}
		ids[i][rec.ID]++
	}
	run := func(addrs []string) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 24)
		for i := range n {
			for _, addr := range addrs {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					send(addr, i)
				})
			}
		}
		wg.Wait()
	}
	before, _ := scrape("http://"+c.gwMetrics+"/metrics", "strata_gateway_upstream_requests_total")
	start := time.Now()
	run([]string{c.gateway.addr, c.gateway.addr}) // every key twice at once
	var direct []string
	for _, node := range c.api {
		direct = append(direct, node.addr)
	}
	run(direct) // and again on every node: replays
	t.Logf("%d creates (%d keys) in %v", n*(2+len(direct)), n, time.Since(start).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Fatalf("%d creates failed, the first: %s", len(failures), failures[0])
	}

	want := map[string]bool{}
	for i, m := range ids {
		if len(m) != 1 {
			t.Errorf("key %d answered %d different records: %v", i, len(m), m)
		}
		for id := range m {
			want[id] = true
		}
	}
	for _, node := range c.api {
		if got := total(t, node.addr, name); got != n {
			t.Errorf("%s counts %d records, want %d", node.name, got, n)
		}
	}
	a := must(t, http.StatusOK, "GET", c.api[0].addr, path+"?limit=500&fields=id", "", nil)
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	a.json(t, &list)
	seen := map[string]bool{}
	for _, it := range list.Items {
		if seen[it.ID] {
			t.Errorf("record %s listed twice", it.ID)
		}
		seen[it.ID] = true
		if !want[it.ID] {
			t.Errorf("record %s was never answered to a client", it.ID)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d records listed, %d answered", len(seen), len(want))
	}

	// The gateway spread the writes over every node.
	after, err := scrape("http://"+c.gwMetrics+"/metrics", "strata_gateway_upstream_requests_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range c.api {
		up := `upstream="http://` + node.addr + `"`
		if d := sumWhere(after, up) - sumWhere(before, up); d < n/4 {
			t.Errorf("the gateway sent %v of %d requests to %s", d, 2*n, node.name)
		}
	}
}

// TestRealtimeAcrossNodes: a Server-Sent Events subscriber on one node gets
// the changes made on the other two.
func TestRealtimeAcrossNodes(t *testing.T) {
	c := requireCluster(t, envCluster)
	name := uniqueName("live")
	c.createCollection(t, name, map[string]any{
		"fields": []map[string]any{{"name": "title", "type": "text"}},
		"rules":  publicRules,
	})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub := c.api[1] // B
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+sub.addr+"/api/v1/realtime?subscribe="+name, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("subscribe on %s: %d", sub.name, res.StatusCode)
	}
	type event struct{ name, data string }
	events := make(chan event, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			case line == "":
				if ev.name != "" {
					events <- ev
				}
				ev = event{}
			}
		}
	}()
	next := func() event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream from %s ended", sub.name)
			}
			return ev
		case <-ctx.Done():
			c.dumpLogs(t)
			t.Fatalf("no event from %s within 20s", sub.name)
		}
		return event{}
	}
	if ev := next(); ev.name != "connected" {
		t.Fatalf("first event %q, want connected", ev.name)
	}

	// One create on A and one on C; B must see both, in any order.
	want := map[string]string{}
	for _, w := range []*node{c.api[0], c.api[2]} {
		start := time.Now()
		a := must(t, http.StatusCreated, "POST", w.addr, "/api/v1/collections/"+name+"/records", "",
			map[string]string{"title": "from " + w.name})
		var rec struct {
			ID string `json:"id"`
		}
		a.json(t, &rec)
		want[rec.ID] = w.name
		for {
			ev := next()
			var d struct {
				Op     string `json:"op"`
				Record struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"record"`
			}
			json.Unmarshal([]byte(ev.data), &d)
			if ev.name == "create" && d.Record.ID == rec.ID {
				if d.Record.Title != "from "+w.name {
					t.Errorf("event record %+v", d.Record)
				}
				t.Logf("a create on %s reached the subscriber on %s after %v", w.name, sub.name, time.Since(start).Round(time.Millisecond))
				break
			}
			if ev.name != "create" || want[d.Record.ID] == "" {
				t.Fatalf("unexpected event %s %s", ev.name, ev.data)
			}
		}
	}
}

// TestCacheInvalidationAcrossNodes: a record of a cache-aside collection,
// cached by reads on node B, is read fresh on B (and C) right after a
// change on node A: the cache is in Redis and A's write drops the entry.
func TestCacheInvalidationAcrossNodes(t *testing.T) {
	c := requireCluster(t, envCluster)
	name := uniqueName("cached")
	c.createCollection(t, name, map[string]any{
		"fields": []map[string]any{{"name": "title", "type": "text"}},
		"rules":  publicRules,
		"cache":  map[string]any{"policy": "cache-aside", "ttl": "1m"},
	})
	A, B, C := c.api[0], c.api[1], c.api[2]
	path := "/api/v1/collections/" + name + "/records"
	a := must(t, http.StatusCreated, "POST", A.addr, path, "", map[string]string{"title": "v1"})
	var rec struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	a.json(t, &rec)
	read := func(n *node) string {
		t.Helper()
		var r struct {
			Title string `json:"title"`
		}
		must(t, http.StatusOK, "GET", n.addr, path+"/"+rec.ID, "", nil).json(t, &r)
		return r.Title
	}
	hits := func(n *node) float64 {
		t.Helper()
		s, err := scrape("http://"+n.addr+"/metrics", "strata_cache_requests_total")
		if err != nil {
			t.Fatal(err)
		}
		return sumWhere(s, `collection="`+name+`"`, `result="hit"`)
	}

	h0 := hits(B)
	if got := read(B); got != "v1" {
		t.Fatalf("first read on B: %q", got)
	}
	if got := read(B); got != "v1" {
		t.Fatalf("second read on B: %q", got)
	}
	if h := hits(B); h <= h0 {
		t.Fatalf("B's reads were not served from the cache (hits %v -> %v): the test would prove nothing", h0, h)
	}
	must(t, http.StatusOK, "PATCH", A.addr, path+"/"+rec.ID, "", map[string]string{"title": "v2"})
	if got := read(B); got != "v2" {
		t.Errorf("read on B after the change on A: %q, want v2 (a stale cache entry)", got)
	}
	if got := read(C); got != "v2" {
		t.Errorf("read on C after the change on A: %q, want v2", got)
	}
	// B caches the new value again.
	h1 := hits(B)
	if got := read(B); got != "v2" || hits(B) <= h1 {
		t.Errorf("B after the change: %q, cached again: %v", got, hits(B) > h1)
	}
}

// TestRateLimitAcrossNodes: one user's budget (--rate-limit-user "20/min
// burst 20", kept in Redis) holds across the nodes: of 30 requests spread
// over the three, exactly 20 pass.
func TestRateLimitAcrossNodes(t *testing.T) {
	c := requireCluster(t, envCluster)
	users, notes := uniqueName("members"), uniqueName("notes")
	c.createCollection(t, users, map[string]any{"type": "auth", "rules": map[string]string{"create": ""}})
	c.createCollection(t, notes, map[string]any{
		"fields": []map[string]any{{"name": "title", "type": "text"}},
		"rules":  publicRules,
	})
	creds := map[string]string{"email": "member@cluster.test", "password": "a long member password"}
	must(t, http.StatusCreated, "POST", c.api[0].addr, "/api/v1/auth/"+users+"/register", "", creds)
	var login struct {
		Token string `json:"access_token"`
	}
	must(t, http.StatusOK, "POST", c.api[1].addr, "/api/v1/auth/"+users+"/login", "", creds).json(t, &login)

	const requests = 30
	var ok, limited atomic.Int32
	var other []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range requests {
		n := c.api[i%len(c.api)]
		wg.Go(func() {
			a, err := do("GET", n.addr, "/api/v1/collections/"+notes+"/records", login.Token, nil)
			switch {
			case err != nil:
				mu.Lock()
				other = append(other, err.Error())
				mu.Unlock()
			case a.status == http.StatusOK:
				ok.Add(1)
			case a.status == http.StatusTooManyRequests:
				limited.Add(1)
				if a.header.Get("Retry-After") == "" || a.header.Get("RateLimit-Policy") == "" {
					mu.Lock()
					other = append(other, "a 429 without Retry-After or RateLimit-Policy")
					mu.Unlock()
				}
			default:
				mu.Lock()
				other = append(other, fmt.Sprintf("%d %s", a.status, a.body))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d requests over %d nodes in %v: %d passed, %d limited", requests, len(c.api), took.Round(time.Millisecond), ok.Load(), limited.Load())
	if len(other) > 0 {
		t.Fatalf("unexpected answers: %v", other)
	}
	// 20 a minute refills one every 3 s; the burst alone decides if the
	// requests took less.
	if took < 3*time.Second && (ok.Load() != userLimitBurst || limited.Load() != requests-userLimitBurst) {
		t.Errorf("%d passed and %d were limited, want %d and %d", ok.Load(), limited.Load(), userLimitBurst, requests-userLimitBurst)
	}
}

var workerNameRE = regexp.MustCompile(`"msg":"jobs started"[^\n]*"worker":"([^"]+)"`)

// TestJobRunsOnWorker: a job enqueued through the gateway (on an API node,
// which runs no jobs) is run by the worker node: its attempted_by names
// the worker the worker node's log announced.
func TestJobRunsOnWorker(t *testing.T) {
	c := requireCluster(t, envCluster)
	// Nodes write their log lines in batches, within 100 ms.
	m := workerNameRE.FindStringSubmatch(c.worker.logs.String())
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		m = workerNameRE.FindStringSubmatch(c.worker.logs.String())
	}
	if m == nil {
		t.Fatalf("the worker node logged no \"jobs started\" line:\n%s", c.worker.logs.tail(20))
	}
	workerName := m[1]
	for _, n := range c.api {
		if workerNameRE.MatchString(n.logs.String()) {
			t.Fatalf("API node %s runs jobs", n.name)
		}
	}

	var job struct {
		ID          int64  `json:"id"`
		State       string `json:"state"`
		AttemptedBy string `json:"attempted_by"`
	}
	must(t, http.StatusCreated, "POST", c.gateway.addr, "/api/v1/jobs", c.key, map[string]any{"kind": "webhook.prune"}).json(t, &job)
	start := time.Now()
	wait := 100 * time.Millisecond
	for job.State != "completed" {
		if time.Since(start) > 15*time.Second || job.State == "dead" || job.State == "cancelled" {
			c.dumpLogs(t)
			t.Fatalf("job %d is %s after %v", job.ID, job.State, time.Since(start))
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
		a, err := do("GET", c.gateway.addr, fmt.Sprintf("/api/v1/jobs/%d", job.ID), c.key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.status == http.StatusOK {
			a.json(t, &job)
		} else if a.status != http.StatusTooManyRequests {
			t.Fatalf("GET job: %d %s", a.status, a.body)
		}
	}
	t.Logf("job %d completed %v after it was enqueued, by %s", job.ID, time.Since(start).Round(time.Millisecond), job.AttemptedBy)
	if job.AttemptedBy != workerName {
		t.Errorf("job attempted by %q, want the worker node's %q", job.AttemptedBy, workerName)
	}
}

// TestNodeKilledUnderLoad: an API node killed with SIGKILL under a
// concurrent load through the gateway costs the clients nothing: every
// GET answers 200 (the gateway retries idempotent requests on another
// node) and every create with an Idempotency-Key is acknowledged and
// stored; and the gateway stops sending to the dead node within its
// health checks' window (healthInterval * unhealthyThreshold), as its
// metrics show.
func TestNodeKilledUnderLoad(t *testing.T) {
	c := requireCluster(t, envCluster)
	name := uniqueName("load")
	c.createCollection(t, name, map[string]any{
		"fields": []map[string]any{{"name": "n", "type": "number"}},
		"rules":  publicRules,
	})
	path := "/api/v1/collections/" + name + "/records"
	var rec struct {
		ID string `json:"id"`
	}
	must(t, http.StatusCreated, "POST", c.gateway.addr, path, "", map[string]int{"n": -1}).json(t, &rec)

	victim := c.api[1]
	up := `upstream="http://` + victim.addr + `"`
	metricsURL := "http://" + c.gwMetrics + "/metrics"
	attempts := func() (float64, error) {
		r, err := scrape(metricsURL, "strata_gateway_upstream_requests_total")
		if err != nil {
			return 0, err
		}
		e, err := scrape(metricsURL, "strata_gateway_upstream_errors_total")
		return sumWhere(r, up) + sumWhere(e, up), err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var gets, getFails, writes, writeFails atomic.Int64
	var mu sync.Mutex
	var firstFail string
	fail := func(s string) {
		mu.Lock()
		if firstFail == "" {
			firstFail = s
		}
		mu.Unlock()
	}
	acked := map[string]string{} // Idempotency-Key -> record id
	const readers, writers = 12, 2
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, err := do("GET", c.gateway.addr, path+"/"+rec.ID, "", nil)
				gets.Add(1)
				if err != nil || a.status != http.StatusOK {
					getFails.Add(1)
					fail(fmt.Sprintf("GET: %v %d %s", err, a.status, a.body))
				}
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				a, err := do("POST", c.gateway.addr, path, c.key, map[string]int{"n": i}, "Idempotency-Key", key)
				writes.Add(1)
				var r struct {
					ID string `json:"id"`
				}
				if err == nil && a.status == http.StatusCreated && json.Unmarshal(a.body, &r) == nil && r.ID != "" {
					mu.Lock()
					acked[key] = r.ID
					mu.Unlock()
					continue
				}
				writeFails.Add(1)
				fail(fmt.Sprintf("POST: %v %d %s", err, a.status, a.body))
			}
		})
	}

	time.Sleep(1500 * time.Millisecond)
	before, err := attempts()
	if err != nil || before == 0 {
		t.Fatalf("the gateway sent nothing to %s before the kill (%v, %v)", victim.name, before, err)
	}
	victim.kill()
	killed := time.Now()
	t.Logf("killed %s (SIGKILL) after %d GETs and %d creates", victim.name, gets.Load(), writes.Load())

	// Watch the attempts on the dead node until the gateway has taken it
	// out (active checks) and sent it nothing for a while.
	var last float64 = before
	lastChange := killed
	out := time.Time{}
	deadline := killed.Add(healthInterval*unhealthyThreshold + 5*time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		v, err := attempts()
		if err != nil {
			t.Fatal(err)
		}
		if v != last {
			last, lastChange = v, time.Now()
		}
		if out.IsZero() {
			if s, err := readGatewayStatus(c.gwMetrics); err == nil {
				for _, u := range s.Upstreams {
					if u.URL == "http://"+victim.addr && u.State == "unhealthy" {
						out = time.Now()
					}
				}
			}
		}
		if !out.IsZero() && time.Since(lastChange) > 1500*time.Millisecond && time.Since(out) > time.Second {
			break
		}
	}
	close(stop)
	wg.Wait()

	lastAttempt := lastChange.Sub(killed)
	t.Logf("after the kill: %v attempts on %s, the last %v after the kill; marked unhealthy after %v; "+
		"%d GETs (%d failed), %d creates (%d failed)", last-before, victim.name, lastAttempt.Round(time.Millisecond),
		out.Sub(killed).Round(time.Millisecond), gets.Load(), getFails.Load(), writes.Load(), writeFails.Load())
	if getFails.Load() > 0 || writeFails.Load() > 0 {
		t.Errorf("clients saw %d failed GETs and %d failed creates; the first: %s", getFails.Load(), writeFails.Load(), firstFail)
	}
	if out.IsZero() {
		t.Errorf("the gateway's status never showed %s unhealthy", victim.name)
	}
	if limit := healthInterval*unhealthyThreshold + time.Second; lastAttempt > limit {
		t.Errorf("the gateway still sent to the dead node %v after the kill (limit %v)", lastAttempt, limit)
	}
	if last == before {
		t.Errorf("the gateway never tried the dead node: the kill was not under load")
	}

	// Every acknowledged create is stored, once.
	if got := total(t, c.api[0].addr, name); got != len(acked)+1 {
		t.Errorf("%d records stored, %d creates acknowledged (+1)", got, len(acked))
	}
	for key, id := range acked {
		if a, err := do("GET", c.api[2].addr, path+"/"+id, "", nil); err != nil || a.status != http.StatusOK {
			t.Errorf("acknowledged create %s (%s) is not there: %v %d", key, id, err, a.status)
			break
		}
	}

	// Start the node again, for whatever runs next.
	if err := victim.start(); err != nil {
		t.Errorf("restart %s: %v", victim.name, err)
	}
}
