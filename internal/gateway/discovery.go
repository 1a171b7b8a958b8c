package gateway

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
}

// discovery is the state of DNS discovery, for the status document.
type discovery struct {
	host string

	mu          sync.Mutex
	lastRefresh time.Time
	lastError   string
	addresses   int
}

// DiscoveryStatus is the state of DNS discovery in the status document.
type DiscoveryStatus struct {
	Host        string     `json:"host"`
	LastRefresh *time.Time `json:"last_refresh,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Addresses   int        `json:"addresses"`
}

func (d *discovery) state() DiscoveryStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := DiscoveryStatus{Host: d.host, LastError: d.lastError, Addresses: d.addresses}
	if !d.lastRefresh.IsZero() {
		t := d.lastRefresh
		s.LastRefresh = &t
	}
	return s
}

func (g *Gateway) discoveryLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.DiscoverInterval)
	defer t.Stop()
	for {
		g.refreshDiscovery(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshDiscovery looks the discovery name up once and makes its addresses
// the discovered upstreams. A failed lookup keeps the last set: a DNS
// outage must not empty the pool.
func (g *Gateway) refreshDiscovery(ctx context.Context) error {
	d := g.disc
	lctx, cancel := context.WithTimeout(ctx, max(g.cfg.DiscoverInterval, 5*time.Second))
	defer cancel()
	ips, err := g.cfg.Resolver.LookupIP(lctx, "ip", d.host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.mu.Lock()
		d.lastError = err.Error()
		d.mu.Unlock()
		g.log.Warn("upstream discovery failed; keeping the last set", "host", d.host, "err", err)
		return err
	}
	port := strconv.Itoa(g.cfg.DiscoverPort)
	specs := make([]UpstreamSpec, 0, len(ips))
	for _, ip := range ips {
		host := net.JoinHostPort(ip.String(), port)
		specs = append(specs, UpstreamSpec{URL: &url.URL{Scheme: g.cfg.DiscoverScheme, Host: host}, Weight: 1})
	}
	added, removed := g.pool.setDiscovered(specs)
	if len(added) > 0 || len(removed) > 0 {
		g.log.Info("upstreams discovered", "host", d.host, "added", added, "removed", removed)
	}
	d.mu.Lock()
	d.lastRefresh = time.Now()
	d.lastError = ""
	d.addresses = len(specs)
	d.mu.Unlock()
	return nil
}
