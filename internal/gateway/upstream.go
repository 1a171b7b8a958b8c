package gateway

import (
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// upstream is one API node the gateway forwards to. Its selection counters
// are atomics read on every request; its health state sits behind mu.
type upstream struct {
	url    *url.URL
	key    string // url.String(), the metrics label and the identity in the pool
	weight int
	static bool // from Config.Upstreams, not from discovery

	inFlight atomic.Int64
	requests atomic.Int64 // attempts sent, for the status document

	mu sync.Mutex
	// Active health checks.
	healthy    bool // false after UnhealthyThreshold failed checks in a row
	checkFails int
	checkOKs   int
	lastCheck  time.Time
	lastError  string
	// Passive ejection.
	fails        int       // consecutive failed attempts
	ejectedUntil time.Time // zero or past when not ejected
	ejections    int       // back-off level: the next cool-down is base << ejections
	lastCooldown time.Duration
	returnedAt   time.Time // when the last cool-down ended
	// Latency, an exponentially weighted moving average that decays toward
	// zero while no samples arrive, so that a node once slow gets tried again.
	ewma     float64 // seconds
	ewmaTime time.Time

	// swrrCurrent is the smooth weighted round robin state, owned by the
	// weighted policy's lock.
	swrrCurrent int

	// available caches healthy && not ejected for the selection path; it is
	// recomputed under mu whenever either changes and when a cool-down ends.
	available atomic.Bool

	// Metric series of this upstream, resolved once.
	mHealthy  prometheus.Gauge
	mInFlight prometheus.Gauge
	mDuration prometheus.Observer
	mRetries  prometheus.Counter
}

func newUpstream(spec UpstreamSpec, static bool, m *metrics) *upstream {
	key := spec.URL.String()
	u := &upstream{
		url: spec.URL, key: key, weight: spec.Weight, static: static, healthy: true,
		mHealthy:  m.healthy.WithLabelValues(key),
		mInFlight: m.inFlight.WithLabelValues(key),
		mDuration: m.duration.WithLabelValues(key),
		mRetries:  m.retries.WithLabelValues(key),
	}
	u.available.Store(true)
	u.mHealthy.Set(1)
	return u
}

// ewmaDecay is the time constant with which an idle upstream's latency
// average decays toward zero.
const ewmaDecay = time.Second

// ewmaAlpha is the weight of a new latency sample.
const ewmaAlpha = 0.3

// latency returns the decayed latency average, in seconds.
func (u *upstream) latency(now time.Time) float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.decayedLocked(now)
}

func (u *upstream) decayedLocked(now time.Time) float64 {
	if u.ewmaTime.IsZero() {
		return 0
	}
	idle := now.Sub(u.ewmaTime)
	if idle <= 0 {
		return u.ewma
	}
	return u.ewma * math.Exp(-float64(idle)/float64(ewmaDecay))
}

// observeLatencyLocked adds a latency sample. A success sample is first
// capped at spikeFactor times the current average (and at least
// spikeFloor): one stall of an otherwise fast node, a GC pause or a lost
// packet, would otherwise keep it out of p2c's choices until the average
// decays, while a node that really turns slow still climbs in a few
// samples. Failures count in full. A new node starts at zero and climbs
// the same way, so that a slow first answer (a cold cache, a fresh
// connection) does not keep it out.
func (u *upstream) observeLatencyLocked(now time.Time, d time.Duration, failure bool) {
	prev := u.decayedLocked(now) // 0 before the first sample: a new node starts out fast
	sample := d.Seconds()
	if !failure {
		sample = min(sample, max(spikeFactor*prev, spikeFloor.Seconds()))
	}
	u.ewma = ewmaAlpha*sample + (1-ewmaAlpha)*prev
	u.ewmaTime = now
}

const (
	spikeFactor = 4
	spikeFloor  = 5 * time.Millisecond
)

// isAvailable reports whether the upstream may be picked now: healthy by
// the active checks and not in a passive cool-down.
func (u *upstream) isAvailable(now time.Time) bool {
	if u.available.Load() {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.refreshLocked(now)
}

// refreshLocked recomputes available, ending a cool-down that is over.
func (u *upstream) refreshLocked(now time.Time) bool {
	if !u.ejectedUntil.IsZero() && !now.Before(u.ejectedUntil) {
		u.ejectedUntil = time.Time{}
		u.returnedAt = now
		u.fails = 0
	}
	ok := u.healthy && u.ejectedUntil.IsZero()
	if u.available.Swap(ok) != ok {
		v := 0.0
		if ok {
			v = 1
		}
		u.mHealthy.Set(v)
	}
	return ok
}

// UpstreamStatus is an upstream as the status document shows it.
type UpstreamStatus struct {
	URL          string     `json:"url"`
	Weight       int        `json:"weight"`
	Source       string     `json:"source"` // static or dns
	State        string     `json:"state"`  // healthy, unhealthy (active checks) or ejected (passive)
	Healthy      bool       `json:"healthy"`
	InFlight     int64      `json:"in_flight"`
	Requests     int64      `json:"requests"`
	LatencyMS    float64    `json:"latency_ewma_ms"`
	Fails        int        `json:"consecutive_failures"`
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	LastCheck    *time.Time `json:"last_check,omitempty"`
	LastError    string     `json:"last_error,omitempty"`
}

func (u *upstream) state(now time.Time) UpstreamStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	avail := u.refreshLocked(now)
	s := UpstreamStatus{
		URL:       u.key,
		Weight:    u.weight,
		Source:    "dns",
		Healthy:   avail,
		InFlight:  u.inFlight.Load(),
		Requests:  u.requests.Load(),
		LatencyMS: math.Round(u.decayedLocked(now)*1e6) / 1e3,
		Fails:     u.fails,
		LastError: u.lastError,
	}
	if u.static {
		s.Source = "static"
	}
	switch {
	case !u.healthy:
		s.State = "unhealthy"
	case !u.ejectedUntil.IsZero():
		s.State = "ejected"
		t := u.ejectedUntil
		s.EjectedUntil = &t
	default:
		s.State = "healthy"
	}
	if !u.lastCheck.IsZero() {
		t := u.lastCheck
		s.LastCheck = &t
	}
	return s
}
