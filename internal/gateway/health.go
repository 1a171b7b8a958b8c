package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// recordFailure counts a failed attempt on u for passive ejection and the
// latency average; MaxFails failures in a row eject u for a cool-down that
// doubles with each ejection that follows closely on the last.
func (g *Gateway) recordFailure(u *upstream, now time.Time, sample time.Duration, reason string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.observeLatencyLocked(now, sample, true)
	u.lastError = reason
	if g.cfg.MaxFails < 0 {
		return
	}
	u.refreshLocked(now)
	if !u.ejectedUntil.IsZero() {
		return // already out; requests that were in flight report late
	}
	u.fails++
	if u.fails < g.cfg.MaxFails {
		return
	}
	// The back-off level falls back to zero once the upstream has stayed in
	// for longer than its last cool-down.
	if u.ejections > 0 && !u.returnedAt.IsZero() && now.Sub(u.returnedAt) > 2*u.lastCooldown {
		u.ejections = 0
	}
	cd := g.cfg.EjectCooldown << min(u.ejections, 20)
	if cd > g.cfg.MaxEjectCooldown || cd <= 0 {
		cd = g.cfg.MaxEjectCooldown
	}
	u.ejections++
	u.lastCooldown = cd
	u.ejectedUntil = now.Add(cd)
	u.fails = 0
	u.refreshLocked(now)
	g.m.ejections.WithLabelValues(u.key).Inc()
	g.log.Warn("upstream ejected", "upstream", u.key, "cooldown", cd, "reason", reason)
}

// recordSuccess counts an answered attempt.
func (g *Gateway) recordSuccess(u *upstream, now time.Time, latency time.Duration) {
	u.mu.Lock()
	u.observeLatencyLocked(now, latency, false)
	u.fails = 0
	if u.ejections > 0 && !u.returnedAt.IsZero() && now.Sub(u.returnedAt) > 2*u.lastCooldown {
		u.ejections = 0
	}
	u.mu.Unlock()
}

func (g *Gateway) healthLoop(ctx context.Context) {
	client := &http.Client{
		Transport:     g.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t := time.NewTicker(g.cfg.HealthInterval)
	defer t.Stop()
	for {
		g.checkAll(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll checks every upstream once, concurrently.
func (g *Gateway) checkAll(ctx context.Context, client *http.Client) {
	var wg sync.WaitGroup
	for _, u := range g.pool.list() {
		wg.Go(func() {
			err := g.check(ctx, client, u)
			if ctx.Err() != nil {
				return
			}
			g.recordCheck(u, time.Now(), err)
		})
	}
	wg.Wait()
}

func (g *Gateway) check(ctx context.Context, client *http.Client, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.url.String()+g.cfg.HealthPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "strata-gateway-health")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	io.CopyN(io.Discard, res.Body, 64<<10)
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("health check answered %d", res.StatusCode)
	}
	return nil
}

func (g *Gateway) recordCheck(u *upstream, now time.Time, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastCheck = now
	if err == nil {
		u.checkFails = 0
		u.checkOKs++
		if !u.healthy && u.checkOKs >= g.cfg.HealthyThreshold {
			u.healthy = true
			u.lastError = ""
			g.log.Info("upstream healthy", "upstream", u.key)
		}
	} else {
		u.checkOKs = 0
		u.checkFails++
		u.lastError = "health check: " + err.Error()
		if u.healthy && u.checkFails >= g.cfg.UnhealthyThreshold {
			u.healthy = false
			g.log.Warn("upstream unhealthy", "upstream", u.key, "err", err)
		}
	}
	u.refreshLocked(now)
}
