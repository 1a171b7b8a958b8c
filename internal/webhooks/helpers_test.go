package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestMain fails the package's tests if they leave goroutines running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a database with collections, a records service writing events,
// a job queue and a webhooks service; started envs also run an embedded
// broker and the outbox relay, so record changes reach endpoints.
type env struct {
	t    *testing.T
	db   *store.DB
	recs *records.Service
	jobs *jobs.Service
	svc  *Service
	reg  *prometheus.Registry
}

type envOptions struct {
	allow        []string
	disableAfter int
	maxAttempts  int
	start        bool // run the broker, relay, workers and subscription
}

// forEngine runs f once per engine, in parallel.
func forEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, engine)
		})
	}
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t *testing.T, engine string, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, engine)
	var relay *outbox.Relay
	var relayMu sync.Mutex
	writer := &outbox.Writer{Notify: func() {
		relayMu.Lock()
		defer relayMu.Unlock()
		if relay != nil {
			relay.Notify()
		}
	}}
	recs, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k"), Events: writer})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*schema.Collection{
		{Name: "posts", Fields: []*schema.Field{
			{Name: "title", Type: schema.Text},
			{Name: "published", Type: schema.Bool},
			{Name: "note", Type: schema.Text, Hidden: true},
		}},
		{Name: "comments", Fields: []*schema.Field{{Name: "body", Type: schema.Text}}},
	} {
		if _, err := recs.CreateCollection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	js, err := jobs.New(jobs.Config{
		DB: db, Node: "test", Logger: testLogger(),
		PollInterval: 20 * time.Millisecond, LeaseTTL: 2 * time.Second, ReapInterval: 100 * time.Millisecond,
		RetryBase: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := New(Config{DB: db, Records: recs, Jobs: js, Logger: testLogger(), Metrics: reg,
		AllowHosts: o.allow, DisableAfter: o.disableAfter, MaxAttempts: o.maxAttempts, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, recs: recs, jobs: js, svc: svc, reg: reg}
	t.Cleanup(func() { svc.Stop() }) // also closes idle connections
	if !o.start {
		return e
	}
	b, err := natsbroker.New(ctx, natsbroker.Config{Dir: t.TempDir(), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := js.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		js.Stop(sctx)
	})
	relayMu.Lock()
	relay = outbox.NewRelay(outbox.RelayConfig{DB: db, Publisher: b, Poll: 20 * time.Millisecond, Dispatch: svc.Dispatch})
	relayMu.Unlock()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { relay.Run(rctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return e
}

// create registers an endpoint, failing the test on error.
func (e *env) create(url string, events ...EventFilter) *Endpoint {
	e.t.Helper()
	ep, err := e.svc.Create(context.Background(), CreateParams{URL: url, Events: events})
	if err != nil {
		e.t.Fatalf("create webhook %s: %v", url, err)
	}
	return ep
}

// write creates a record of posts and returns its id.
func (e *env) write(ctx context.Context, collection string, body string) string {
	e.t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatal(err)
	}
	c, err := e.recs.Create(ctx, collection, m, records.WriteOptions{})
	if err != nil {
		e.t.Fatalf("create %s record: %v", collection, err)
	}
	return c.Record.ID
}

func (e *env) update(collection, id, body string) {
	e.t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.recs.Update(context.Background(), collection, id, m, false, records.WriteOptions{}); err != nil {
		e.t.Fatalf("update %s/%s: %v", collection, id, err)
	}
}

func (e *env) deliveries(id string) []*Delivery {
	e.t.Helper()
	list, err := e.svc.Deliveries(context.Background(), id, 500)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *env) endpoint(id string) *Endpoint {
	e.t.Helper()
	ep, err := e.svc.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return ep
}

// pendingJobs counts delivery jobs not yet finished.
func (e *env) pendingJobs() int {
	e.t.Helper()
	res, err := e.jobs.List(context.Background(), jobs.ListParams{Kinds: []string{JobKind}, Limit: 500,
		States: []jobs.State{jobs.StateAvailable, jobs.StateScheduled, jobs.StateRetryable, jobs.StateRunning}})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(res.Jobs)
}

func (e *env) jobsIn(state jobs.State) []*jobs.Job {
	e.t.Helper()
	res, err := e.jobs.List(context.Background(), jobs.ListParams{Kinds: []string{JobKind}, Limit: 500, States: []jobs.State{state}})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Jobs
}

// auditCount counts audit entries of an event about target.
func (e *env) auditCount(event, target string) int {
	e.t.Helper()
	a := newArgs(e.db.Dialect())
	var n int
	err := e.db.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM _audit WHERE event = `+a.Add(event)+` AND target = `+a.Add(target), a.Values...).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
	Data   map[string]any
}

// receiver is an HTTP endpoint on loopback that records what it gets and
// answers with the status its respond function picks for the n-th
// request (from 1).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int) int
}

func newReceiver(t *testing.T, respond func(n int) int) *receiver {
	t.Helper()
	r := &receiver{respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var data map[string]any
		json.Unmarshal(body, &data)
		r.mu.Lock()
		r.got = append(r.got, received{Header: req.Header.Clone(), Body: body, Data: data})
		n := len(r.got)
		r.mu.Unlock()
		status := http.StatusOK
		if r.respond != nil {
			status = r.respond(n)
		}
		w.WriteHeader(status)
		io.WriteString(w, strings.Repeat("x", 3000)) // longer than a snippet
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// types lists the type of every request received, in order.
func (r *receiver) types() []string {
	var out []string
	for _, g := range r.requests() {
		typ, _ := g.Data["type"].(string)
		out = append(out, typ)
	}
	return out
}

func always(status int) func(int) int { return func(int) int { return status } }

// value reads a counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}
