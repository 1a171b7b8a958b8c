package gateway

import (
	"net/http"
	"time"

	"github.com/strata-dev/strata/internal/httpx"
)

// Status is the status document: the policy, every upstream with its
// state, and discovery and TLS where they are on.
type Status struct {
	Policy    string           `json:"policy"`
	Available int              `json:"available"`
	Upstreams []UpstreamStatus `json:"upstreams"`
	Discovery *DiscoveryStatus `json:"discovery,omitempty"`
	TLS       *TLSStatus       `json:"tls,omitempty"`
}

// TLSStatus is the certificate served, in the status document.
type TLSStatus struct {
	NotAfter time.Time `json:"not_after"`
}

// Status returns the current status document.
func (g *Gateway) Status() Status {
	now := time.Now()
	s := Status{Policy: g.cfg.Policy, Upstreams: []UpstreamStatus{}}
	if s.Policy == "" {
		s.Policy = PolicyRoundRobin
	}
	for _, u := range g.pool.list() {
		us := u.state(now)
		if us.Healthy {
			s.Available++
		}
		s.Upstreams = append(s.Upstreams, us)
	}
	if g.disc != nil {
		d := g.disc.state()
		s.Discovery = &d
	}
	if g.certs != nil {
		s.TLS = &TLSStatus{NotAfter: g.certs.notAfter()}
	}
	return s
}

// StatusHandler serves the status document as JSON, with status 200 while
// an upstream is available and 503 when none is.
func (g *Gateway) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			g.writeProblem(w, nil, http.StatusMethodNotAllowed, "method-not-allowed", "the status document is read with GET")
			return
		}
		s := g.Status()
		code := http.StatusOK
		if s.Available == 0 {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.JSON(w, code, s)
	})
}
