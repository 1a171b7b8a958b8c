package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/storetest"
	"github.com/strata-dev/strata/internal/telemetry"
)

// syncBuffer is a log destination that tests read while the app writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testApp is an App on engine with JSON logs at debug level, a superuser
// and its token.
type testApp struct {
	t     testing.TB
	app   *App
	logs  *syncBuffer
	token string
}

func newTestApp(t testing.TB, engine string, edit ...func(*config.Config)) *testApp {
	t.Helper()
	cfg := config.Default()
	cfg.Dir = t.TempDir()
	cfg.LogLevel, cfg.LogFormat = "debug", "json"
	if engine == "postgres" {
		cfg.DB = storetest.Schema(t)
	}
	for _, f := range edit {
		f(&cfg)
	}
	logs := &syncBuffer{}
	a, err := Open(context.Background(), cfg, NewLogger(cfg, logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ta := &testApp{t: t, app: a, logs: logs}
	if err := a.CreateSuperuser(context.Background(), "root@example.com", "root password 1"); err != nil {
		t.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	ta.do("POST", "/api/v1/admin/login", `{"email":"root@example.com","password":"root password 1"}`, 200, &login)
	ta.token = login.AccessToken
	return ta
}

// do sends a request with the superuser's token (unless headers set
// Authorization), checks the status and decodes a JSON answer into out.
func (ta *testApp) do(method, path, body string, status int, out any, headers ...string) http.Header {
	ta.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if ta.token != "" {
		req.Header.Set("Authorization", "Bearer "+ta.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	ta.app.Handler().ServeHTTP(w, req)
	if w.Code != status {
		ta.t.Fatalf("%s %s: status %d, want %d: %s", method, path, w.Code, status, w.Body)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			ta.t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
		}
	}
	return w.Header()
}

// postsWithOne creates a collection "posts" with one record and returns its id.
func (ta *testApp) postsWithOne() string {
	ta.t.Helper()
	ta.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	var rec struct{ ID string }
	ta.do("POST", "/api/v1/collections/posts/records", `{"title":"hello"}`, 201, &rec)
	return rec.ID
}

// otlpReceiver is an OTLP/HTTP trace receiver: it decodes the protobuf
// export requests the SDK's exporter sends and keeps their spans.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (o *otlpReceiver) trace(id []byte) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if bytes.Equal(s.TraceId, id) {
			out = append(out, s)
		}
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.Attributes {
		if kv.Key != key {
			continue
		}
		if v, ok := kv.Value.Value.(*commonpb.AnyValue_IntValue); ok {
			return strconv.FormatInt(v.IntValue, 10)
		}
		return kv.Value.GetStringValue()
	}
	return ""
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestTraceOfOneRequest runs a real OTLP receiver, configures tracing with
// the standard environment variables, sends one API request that carries
// a traceparent, and checks the span tree: the server span continues the
// caller's trace and the SQL statements are its children.
func TestTraceOfOneRequest(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			recv := &otlpReceiver{}
			srv := httptest.NewServer(recv)
			defer srv.Close()
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
			t.Setenv("OTEL_SERVICE_NAME", "strata-test")
			ta := newTestApp(t, engine)
			if !ta.app.tracing.Enabled() {
				t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
			}
			id := ta.postsWithOne()

			traceID, parentID := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			ta.do("GET", "/api/v1/collections/posts/records/"+id, "", 200, nil,
				"Traceparent", "00-"+traceID+"-"+parentID+"-01", "X-Request-Id", "trace-test-1")
			if err := ta.app.tracing.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			tid, _ := hex.DecodeString(traceID)
			pid, _ := hex.DecodeString(parentID)
			spans := recv.trace(tid)
			var server *tracepb.Span
			for _, s := range spans {
				if bytes.Equal(s.ParentSpanId, pid) {
					server = s
				}
			}
			if server == nil {
				t.Fatalf("no span continues the caller's trace; spans of the trace: %v", spans)
			}
			if server.Name != "GET /api/v1/collections/{name}/records/{id}" || server.Kind != tracepb.Span_SPAN_KIND_SERVER ||
				attr(server, "http.route") != "/api/v1/collections/{name}/records/{id}" || attr(server, "http.response.status_code") != "200" {
				t.Errorf("server span: name %q kind %v attrs %v", server.Name, server.Kind, server.Attributes)
			}
			system := map[string]string{"sqlite": "sqlite", "postgres": "postgresql"}[engine]
			var selects int
			for _, s := range spans {
				if !bytes.Equal(s.ParentSpanId, server.SpanId) {
					continue
				}
				if s.Kind != tracepb.Span_SPAN_KIND_CLIENT || attr(s, "db.system.name") != system || attr(s, "db.query.text") == "" {
					t.Errorf("SQL span %q: kind %v attrs %v", s.Name, s.Kind, s.Attributes)
				}
				if s.Name == "select" {
					selects++
				}
			}
			if selects == 0 {
				t.Errorf("no SQL span under the server span; spans: %v", spans)
			}
			// The request's log lines carry its trace id.
			if !strings.Contains(ta.logs.String(), `"request_id":"trace-test-1","trace_id":"`+traceID+`"`) {
				t.Errorf("the access log line lacks the request and trace ids:\n%s", ta.logs)
			}
		})
	}
}

// TestTracingOffByDefault: without OTEL_* variables nothing is traced, but
// a caller's trace id still reaches the logs.
func TestTracingOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	ta := newTestApp(t, "sqlite")
	if ta.app.tracing.Enabled() || ta.app.tracing.Tracer("x") != nil {
		t.Fatal("tracing is on without configuration")
	}
	traceID := "0af7651916cd43dd8448eb211c80319c"
	ta.do("GET", "/api/v1/collections", "", 200, nil, "Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	if !strings.Contains(ta.logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("trace id of the caller not logged:\n%s", ta.logs)
	}
}

func TestTracingEnabled(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
	}
	for _, c := range cases {
		if got := telemetry.TracingEnabled(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: enabled = %v, want %v", c.env, got, c.want)
		}
	}
}

// scrape fetches /metrics and parses it.
func (ta *testApp) scrape() (string, map[string]*dto.MetricFamily) {
	ta.t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	w := httptest.NewRecorder()
	ta.app.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		ta.t.Fatalf("/metrics: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		ta.t.Fatalf("parse /metrics: %v", err)
	}
	return body, fams
}

// TestMetrics: requests and statements are counted by route template and
// operation, never by raw path, and the output passes promlint.
func TestMetrics(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ta := newTestApp(t, engine)
			id := ta.postsWithOne()
			ta.do("GET", "/api/v1/collections/posts/records/"+id, "", 200, nil)
			ta.do("GET", "/api/v1/collections/posts/records/nope", "", 404, nil)
			ta.do("GET", "/no/such/route/"+id, "", 404, nil)
			body, fams := ta.scrape()

			const route = "/api/v1/collections/{name}/records/{id}"
			count := func(fam string, labels map[string]string) uint64 {
				f := fams[fam]
				if f == nil {
					t.Fatalf("metric %s is missing", fam)
				}
				var n uint64
				for _, m := range f.Metric {
					ok := true
					for k, v := range labels {
						if labelValue(m, k) != v {
							ok = false
						}
					}
					if ok && m.Histogram != nil {
						n += m.Histogram.GetSampleCount()
					}
				}
				return n
			}
			if n := count("strata_http_request_duration_seconds", map[string]string{"method": "GET", "route": route, "status": "2xx"}); n != 1 {
				t.Errorf("2xx views counted %d times, want 1", n)
			}
			if n := count("strata_http_request_duration_seconds", map[string]string{"method": "GET", "route": route, "status": "4xx"}); n != 1 {
				t.Errorf("4xx views counted %d times, want 1", n)
			}
			if n := count("strata_http_request_duration_seconds", map[string]string{"route": "unmatched", "status": "4xx"}); n != 1 {
				t.Errorf("unmatched requests counted %d times, want 1", n)
			}
			if n := count("strata_http_response_size_bytes", map[string]string{"route": route}); n != 2 {
				t.Errorf("response sizes of views counted %d times, want 2", n)
			}
			if n := count("strata_db_query_duration_seconds", map[string]string{"engine": engine, "operation": "select"}); n == 0 {
				t.Error("no select statement counted")
			}
			if n := count("strata_db_query_duration_seconds", map[string]string{"engine": engine, "operation": "insert"}); n == 0 {
				t.Error("no insert statement counted")
			}
			if strings.Contains(body, id) {
				t.Error("a raw path (record id) appears in /metrics")
			}
			for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "strata_http_requests_in_flight", "go_sql_open_connections"} {
				if fams[name] == nil {
					t.Errorf("metric %s is missing", name)
				}
			}
			if engine == "sqlite" && (fams["strata_db_write_queue_length"] == nil || count("strata_db_write_batch_size", nil) == 0) {
				t.Error("SQLite group-commit metrics are missing")
			}
			gauge := func(fam, label, value string) float64 {
				f := fams[fam]
				if f == nil {
					t.Fatalf("metric %s is missing", fam)
				}
				for _, m := range f.Metric {
					if label == "" || labelValue(m, label) == value {
						return m.GetGauge().GetValue()
					}
				}
				t.Fatalf("metric %s has no %s=%q", fam, label, value)
				return 0
			}
			if gauge("strata_component_up", "component", "database") != 1 || gauge("strata_component_up", "component", "migrations") != 1 {
				t.Error("components not reported up")
			}
			if gauge("strata_draining", "", "") != 0 || gauge("strata_data_disk_free_bytes", "", "") <= 0 {
				t.Error("draining or disk space wrong")
			}
			if engine == "sqlite" && gauge("strata_sqlite_file_size_bytes", "", "") <= 0 {
				t.Error("SQLite file size not reported")
			}
			problems, err := promlint.New(strings.NewReader(body)).Lint()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// TestTraceOfCacheAndPublish: a cached view gets a cache span under its
// request, and a create's event is published in the create's trace.
func TestTraceOfCacheAndPublish(t *testing.T) {
	recv := &otlpReceiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	s := serve(t, "sqlite")
	s.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}],"cache":{"policy":"cache-aside","ttl":"1m"}}`, 201, nil)
	createTrace := "5bf92f3577b34da6a3ce929d0e0e4736"
	var rec struct{ ID string }
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"hello"}`, 201, &rec,
		"Traceparent", "00-"+createTrace+"-10f067aa0ba902b7-01")
	viewTrace := "6bf92f3577b34da6a3ce929d0e0e4736"
	for range 2 {
		s.do("GET", "/api/v1/collections/posts/records/"+rec.ID, "", 200, nil,
			"Traceparent", "00-"+viewTrace+"-20f067aa0ba902b7-01")
	}
	tid, _ := hex.DecodeString(createTrace)
	waitUntil(t, "the create's event is published in its trace", func() bool {
		s.app.tracing.ForceFlush(context.Background())
		for _, sp := range recv.trace(tid) {
			if sp.Name == "publish records.posts" && sp.Kind == tracepb.Span_SPAN_KIND_PRODUCER {
				return true
			}
		}
		return false
	})
	vid, _ := hex.DecodeString(viewTrace)
	var hits, misses int
	for _, sp := range recv.trace(vid) {
		if sp.Name != "cache view" {
			continue
		}
		for _, kv := range sp.Attributes {
			if kv.Key == "strata.cache.hit" {
				if kv.Value.GetBoolValue() {
					hits++
				} else {
					misses++
				}
			}
		}
	}
	if hits != 1 || misses != 1 {
		t.Errorf("cache spans of two views: %d hits, %d misses; want 1 and 1", hits, misses)
	}
}

// TestPprof: profiles are served on their own address when asked, and
// never on the API's.
func TestPprof(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := serve(t, "sqlite", func(c *config.Config) { c.PprofHTTP = addr })
	get := func(url string) (int, string) {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("http://" + addr + "/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile:") {
		t.Errorf("heap profile: %d %.200s", code, body)
	}
	if code, body := get("http://" + addr + "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	if code, _ := get(s.url + "/debug/pprof/"); code != 404 {
		t.Errorf("profiles on the API's address: %d, want 404", code)
	}
	if !strings.Contains(s.logs.String(), "/debug/pprof/") {
		t.Errorf("where profiles are served not logged:\n%s", s.logs)
	}
}
