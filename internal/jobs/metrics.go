package jobs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	enqueued  *prometheus.CounterVec
	completed *prometheus.CounterVec
	failed    *prometheus.CounterVec
	retried   *prometheus.CounterVec
	dead      *prometheus.CounterVec
	expired   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	depth     *prometheus.GaugeVec
}

// newMetrics registers the service's metrics with reg; a nil reg keeps
// them unexported.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	byKind := []string{"kind"}
	return &metrics{
		enqueued: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_enqueued_total",
			Help: "Jobs enqueued (counted when their transaction commits), by kind.",
		}, byKind),
		completed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_completed_total",
			Help: "Job attempts that succeeded, by kind.",
		}, byKind),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_failed_total",
			Help: "Job attempts that failed (returned an error, panicked or timed out), by kind.",
		}, byKind),
		retried: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_retried_total",
			Help: "Failed job attempts scheduled to run again after a backoff, by kind.",
		}, byKind),
		dead: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_dead_total",
			Help: "Jobs moved to the dead-letter state after their last attempt failed, by kind.",
		}, byKind),
		expired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_jobs_lease_expired_total",
			Help: "Running jobs whose worker stopped renewing the lease and that were taken back, by kind.",
		}, byKind),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strata_jobs_duration_seconds",
			Help:    "How long job attempts ran, by kind.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}, byKind),
		depth: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_jobs_queue_depth",
			Help: "Jobs by queue and state (completed and cancelled jobs excluded), sampled periodically; every node reports the same figure.",
		}, []string{"queue", "state"}),
	}
}
