package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkHTTP measures whole requests through the handler (no network):
// what the API adds on top of the records service.
func BenchmarkHTTP(b *testing.B) {
	o, id, tok := benchAPI(b, nil, nil)
	h := rest.New(o)
	b.Run("view", benchGet(h, tok, "/api/v1/collections/posts/records/"+id))
	b.Run("list", benchGet(h, tok, "/api/v1/collections/posts/records?limit=50&sort=-views&filter="+url.QueryEscape("published = true && views >= 500")))
	b.Run("view-anonymous", benchGet(h, "", "/api/v1/collections/posts/records/"+id))
}

// BenchmarkTelemetry is the cost of metrics and tracing on a view: the
// same request with neither, with metrics, and with metrics and every
// request traced (spans go to an exporter that drops them).
func BenchmarkTelemetry(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	for _, c := range []struct {
		name    string
		metrics bool
		tracer  trace.Tracer
	}{{"off", false, nil}, {"metrics", true, nil}, {"metrics+tracing", true, tp.Tracer("bench")}} {
		var reg prometheus.Registerer
		if c.metrics {
			reg = prometheus.NewRegistry()
		}
		o, id, tok := benchAPI(b, reg, c.tracer)
		b.Run(c.name, benchGet(rest.New(o), tok, "/api/v1/collections/posts/records/"+id))
	}
}

// benchAPI returns the options of an API over 5,000 posts, the id of one
// and a superuser token.
func benchAPI(b *testing.B, reg prometheus.Registerer, tracer trace.Tracer) (rest.Options, string, string) {
	ctx := context.Background()
	p := storetest.Params(b, "sqlite")
	p.Metrics, p.Tracer = reg, tracer
	db, err := store.Open(ctx, p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	signer, err := auth.LoadSigner(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	recs, err := records.New(ctx, records.Options{DB: db, Secret: signer.Secret("cursor")})
	if err != nil {
		b.Fatal(err)
	}
	ident := identity.New(identity.Options{DB: db, Records: recs, Signer: signer})
	o := rest.Options{Records: recs, DB: db, Signer: signer, Identity: ident, Logger: slog.New(slog.DiscardHandler),
		Metrics: reg, Tracer: tracer}
	f64 := func(v float64) *float64 { return &v }
	public := ""
	if _, err := recs.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true, Max: f64(200)},
		{Name: "views", Type: schema.Number, Min: f64(0)},
		{Name: "published", Type: schema.Bool},
	}, Indexes: []schema.Index{{Fields: []string{"published", "views"}}},
		Rules: schema.Rules{List: &public, View: &public}}); err != nil {
		b.Fatal(err)
	}
	var id string
	for i := range 5000 {
		c, err := recs.Create(ctx, "posts", map[string]json.RawMessage{
			"title": json.RawMessage(fmt.Sprintf(`"post %d"`, i)), "views": json.RawMessage(fmt.Sprint(i % 1000)),
			"published": json.RawMessage(fmt.Sprint(i%2 == 0))}, records.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		id = c.Record.ID
	}
	tok, _ := signer.Issue(auth.Principal{ID: "su", Role: auth.RoleSuperuser}, time.Hour, time.Now())
	return o, id, tok
}

func benchGet(h http.Handler, tok, path string) func(b *testing.B) {
	return func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				// net/http serves each request with a context it cancels
				// when the request ends; so does the benchmark.
				ctx, cancel := context.WithCancel(context.Background())
				req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				cancel()
				if w.Code != http.StatusOK {
					b.Errorf("%s: %d %s", path, w.Code, w.Body)
					return
				}
			}
		})
	}
}
