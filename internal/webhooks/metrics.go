package webhooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/strata-dev/strata/internal/telemetry"
)

type metrics struct {
	enqueued   prometheus.Counter
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	disabled   *prometheus.CounterVec
}

// newMetrics registers the service's metrics with reg; a nil reg keeps
// them unexported.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		enqueued: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_webhook_deliveries_enqueued_total",
			Help: "Delivery jobs enqueued for record events (one per matching endpoint).",
		}),
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_webhook_deliveries_total",
			Help: "Delivery attempts, by result (success, failure) and status class (2xx, 3xx, 4xx, 5xx, or none when there was no response).",
		}, []string{"result", "status_class"}),
		latency: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_webhook_delivery_duration_seconds",
			Help:    "How long delivery attempts took, from the request to the end of the response body read.",
			Buckets: telemetry.DurationBuckets,
		}),
		disabled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_webhook_endpoints_disabled_total",
			Help: "Endpoints disabled by the service, by reason (gone: a 410 response; failures: too many failed attempts in a row).",
		}, []string{"reason"}),
	}
}

func (m *metrics) observe(d *Delivery, took time.Duration) {
	result := "failure"
	if d.Success {
		result = "success"
	}
	class := "none"
	if d.Status >= 100 && d.Status < 600 {
		class = string(rune('0'+d.Status/100)) + "xx"
	}
	m.deliveries.WithLabelValues(result, class).Inc()
	m.latency.Observe(took.Seconds())
}
