package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health runs the readiness checks of a node's components (database,
// migrations, cache, broker) and remembers whether the node is draining.
type Health struct {
	mu       sync.Mutex
	checks   []check
	draining atomic.Bool
	timeout  time.Duration
}

type check struct {
	name string
	fn   func(ctx context.Context) error
}

// NewHealth returns a Health whose checks each get timeout to answer.
func NewHealth(timeout time.Duration) *Health {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Health{timeout: timeout}
}

// Add registers a component's check: nil means up, an error says why not.
// A check's error text is shown to callers of /readyz, so it must be safe
// to show (see Unavailable).
func (h *Health) Add(name string, fn func(ctx context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, check{name, fn})
}

// Drain marks the node as shutting down: from now on it is not ready, so
// load balancers stop sending it traffic while in-flight requests finish.
func (h *Health) Drain() { h.draining.Store(true) }

// Draining reports whether Drain was called.
func (h *Health) Draining() bool { return h.draining.Load() }

// Component is the state of one component in a Report.
type Component struct {
	Status   string  `json:"status"` // "up" or "down"
	Error    string  `json:"error,omitempty"`
	Duration float64 `json:"duration_ms"`
}

// Report is the answer of a readiness check.
type Report struct {
	Status     string               `json:"status"` // "ready", "not_ready" or "draining"
	Components map[string]Component `json:"components"`
}

// Ready reports whether every component is up and the node not draining.
func (r Report) Ready() bool { return r.Status == "ready" }

// Unavailable is an error a check returns with a reason safe to show.
type Unavailable struct{ Reason string }

func (e Unavailable) Error() string { return e.Reason }

// Check runs every check concurrently and reports each component.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.Lock()
	checks := append([]check(nil), h.checks...)
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()

	comps := make([]Component, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			start := time.Now()
			err := c.fn(ctx)
			comps[i] = Component{Status: "up", Duration: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				comps[i].Status = "down"
				comps[i].Error = safeReason(err)
			}
		})
	}
	wg.Wait()
	r := Report{Status: "ready", Components: make(map[string]Component, len(checks))}
	for i, c := range checks {
		r.Components[c.name] = comps[i]
		if comps[i].Status != "up" {
			r.Status = "not_ready"
		}
	}
	if h.Draining() {
		r.Status = "draining"
	}
	return r
}

// safeReason is the text of err for an anonymous caller: the reason of an
// Unavailable, or a plain word; details of other errors go to the log.
func safeReason(err error) string {
	var u Unavailable
	if errors.As(err, &u) {
		return u.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "did not answer in time"
	}
	return "does not answer"
}

var (
	componentUpDesc = prometheus.NewDesc("strata_component_up",
		"Whether a component answers its readiness check (1) or not (0), checked at each scrape.", []string{"component"}, nil)
	drainingDesc = prometheus.NewDesc("strata_draining",
		"Whether the node is shutting down and refuses new traffic (1) or not (0).", nil, nil)
)

// Describe implements prometheus.Collector.
func (h *Health) Describe(ch chan<- *prometheus.Desc) {
	ch <- componentUpDesc
	ch <- drainingDesc
}

// Collect implements prometheus.Collector: it runs the checks, so a scrape
// sees the state of each component at that moment.
func (h *Health) Collect(ch chan<- prometheus.Metric) {
	rep := h.Check(context.Background())
	for name, c := range rep.Components {
		v := 0.0
		if c.Status == "up" {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(componentUpDesc, prometheus.GaugeValue, v, name)
	}
	d := 0.0
	if h.Draining() {
		d = 1
	}
	ch <- prometheus.MustNewConstMetric(drainingDesc, prometheus.GaugeValue, d)
}
