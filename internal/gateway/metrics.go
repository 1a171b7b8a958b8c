package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-dev/strata/internal/telemetry"
)

// metrics are the gateway's metrics, labelled by upstream URL.
type metrics struct {
	requests   *prometheus.CounterVec   // upstream, code
	errors     *prometheus.CounterVec   // upstream, kind
	duration   *prometheus.HistogramVec // upstream
	inFlight   *prometheus.GaugeVec     // upstream
	healthy    *prometheus.GaugeVec     // upstream
	retries    *prometheus.CounterVec   // upstream (the one given up on)
	ejections  *prometheus.CounterVec   // upstream
	noUpstream prometheus.Counter
	upstreams  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	up := []string{"upstream"}
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_upstream_requests_total",
			Help: "Attempts that got a response from an upstream, by upstream and status code.",
		}, []string{"upstream", "code"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_upstream_errors_total",
			Help: "Failed attempts, by upstream and kind: connect (nothing reached the upstream), transport (the exchange broke), timeout, status (a 5xx answer).",
		}, []string{"upstream", "kind"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_gateway_upstream_response_seconds",
			Help:    "Time from sending an attempt to an upstream to its response headers.",
			Buckets: telemetry.DurationBuckets,
		}, up),
		inFlight: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_gateway_upstream_in_flight",
			Help: "Requests (and upgraded connections) an upstream is serving now.",
		}, up),
		healthy: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_gateway_upstream_healthy",
			Help: "1 when an upstream takes requests, 0 when it failed its health checks or is ejected.",
		}, up),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_retries_total",
			Help: "Requests retried on another upstream, by the upstream that failed.",
		}, up),
		ejections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_gateway_upstream_ejections_total",
			Help: "Times an upstream was ejected after consecutive failures.",
		}, up),
		noUpstream: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_gateway_no_upstream_total",
			Help: "Requests answered 503 because no upstream was available.",
		}),
		upstreams: f.NewGauge(prometheus.GaugeOpts{
			Name: "strata_gateway_upstreams",
			Help: "Upstreams known, static and discovered.",
		}),
	}
}

// forget drops the series of an upstream that left the pool.
func (m *metrics) forget(u *upstream) {
	l := prometheus.Labels{"upstream": u.key}
	m.requests.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.healthy.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.ejections.DeletePartialMatch(l)
}

func codeLabel(code int) string { return strconv.Itoa(code) }
