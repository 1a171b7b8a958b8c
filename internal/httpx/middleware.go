package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/ascii"
	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/ratelimit"
	"github.com/strata-dev/strata/internal/telemetry"
)

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string { return telemetry.RequestID(ctx) }

var requestIDChars = ascii.NewSet("A-Za-z0-9._-")

// ValidRequestID reports whether a client's X-Request-Id may be kept: 1 to
// 128 letters, digits, '.', '_' or '-'.
func ValidRequestID(id string) bool { return ascii.Name(id, requestIDChars, requestIDChars, 1, 128) }

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	size   int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.size += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Observe says where a request's log line, metrics and span go.
type Observe struct {
	Log *slog.Logger
	// Metrics receives the HTTP metrics; nil exports none.
	Metrics prometheus.Registerer
	// Tracer, when set, gives every request a server span, continuing the
	// trace of a traceparent header.
	Tracer trace.Tracer
	// TrustedProxies are the peers whose Forwarded and X-Forwarded-For
	// headers name the client recorded for the request (see
	// ratelimit.ClientIP); with none, the client is the socket peer.
	TrustedProxies []netip.Prefix
}

// httpMetrics are the metrics every request updates.
type httpMetrics struct {
	inFlight prometheus.Gauge
	duration *prometheus.HistogramVec
	size     *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	f := promauto.With(reg)
	return &httpMetrics{
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_http_requests_in_flight",
			Help: "Requests being served.",
		}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_http_request_duration_seconds",
			Help:    "Time to serve a request, by method, route template and status class.",
			Buckets: telemetry.DurationBuckets,
		}, []string{"method", "route", "status"}),
		size: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_http_response_size_bytes",
			Help:    "Size of response bodies, by method and route template.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10), // 64 B to 16 MiB
		}, []string{"method", "route"}),
	}
}

// methodLabel keeps the method label to a known set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "5xx"
	}
	return statusClasses[code/100-1]
}

// unmatched is the route label of requests no route took.
const unmatched = "unmatched"

// Header values that every answer carries, one slice shared by all: a
// Header holds it under its canonical key, and neither Set nor Add writes
// into it (Add appends past its length, which is its capacity).
var (
	hdrNosniff    = []string{"nosniff"}
	hdrDeny       = []string{"DENY"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrJSON       = []string{"application/json"}
)

// Middleware wraps every request: it gives it an id (X-Request-Id, taken
// from the client when well formed), continues the caller's trace, sets
// security headers, turns panics into 500 problems, and at the end writes
// one access-log line and the request's metrics, labelled by route
// template.
func Middleware(o Observe, next http.Handler) http.Handler {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var m *httpMetrics
	if o.Metrics != nil {
		m = newHTTPMetrics(o.Metrics)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if m != nil {
			m.inFlight.Inc()
			defer m.inFlight.Dec()
		}
		id := r.Header.Get("X-Request-Id")
		if !ValidRequestID(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		info := &telemetry.Request{ID: id}
		ctx := telemetry.WithRequest(r.Context(), info)
		if r.Header.Get("Traceparent") != "" {
			ctx = telemetry.Propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		var span trace.Span
		if o.Tracer != nil {
			ctx, span = o.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		}
		ip := r.RemoteAddr
		if a := ratelimit.ClientIP(r, o.TrustedProxies); a.IsValid() {
			ip = a.String()
		}
		ctx = auth.WithClient(ctx, auth.Client{IP: ip, UserAgent: r.UserAgent()})
		r = r.WithContext(ctx)
		h := w.Header()
		h["X-Request-Id"] = []string{id}
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrNoReferrer
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("panic: %v", v)
				log.ErrorContext(ctx, "handler panicked", "err", err, "stack", string(debug.Stack()))
				if rec.status == 0 {
					WriteProblem(rec, ProblemFor(err))
				}
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			end := time.Now()
			elapsed := end.Sub(start)
			route := info.Route
			if route == "" {
				route = unmatched
			}
			if m != nil {
				method := methodLabel(r.Method)
				m.duration.WithLabelValues(method, route, statusClass(rec.status)).Observe(elapsed.Seconds())
				m.size.WithLabelValues(method, route).Observe(float64(rec.size))
			}
			if span != nil {
				span.SetName(r.Method + " " + route)
				span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(rec.status))
				if rec.status >= 500 {
					span.SetStatus(codes.Error, "")
				}
				span.End()
			}
			telemetry.LogAccess(ctx, log, telemetry.Access{Time: end, Method: r.Method, Route: route, Path: r.URL.Path,
				Status: rec.status, Bytes: rec.size, Duration: elapsed, User: info.User})
		}()
		next.ServeHTTP(rec, r)
	})
}

// problemWriter replaces the plain text 404 and 405 answers of
// http.ServeMux with problem documents.
type problemWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (p *problemWriter) WriteHeader(code int) {
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		p.Header().Get("Content-Type") == "text/plain; charset=utf-8" {
		p.replaced = true
		var err error
		if code == http.StatusNotFound {
			err = apperr.New(apperr.NotFound, "no route matches %s %s", p.r.Method, p.r.URL.Path)
		} else {
			err = apperr.New(apperr.MethodNotAllowed, "%s is not allowed on %s; allowed: %s", p.r.Method, p.r.URL.Path, p.Header().Get("Allow"))
		}
		pr := ProblemFor(err)
		pr.Instance = p.r.URL.Path
		WriteProblem(p.ResponseWriter, pr)
		return
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.replaced {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Problems makes the mux's own 404 and 405 answers problem documents.
func Problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&problemWriter{ResponseWriter: w, r: r}, r)
		// The mux has set r.Pattern, e.g. "GET /api/v1/collections/{name}".
		if info := telemetry.RequestFrom(r.Context()); info != nil && r.Pattern != "" {
			_, path, _ := strings.Cut(r.Pattern, " ")
			info.Route = path
		}
	})
}
