package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/gateway"
	"github.com/strata-dev/strata/internal/telemetry"
)

// ServeGateway runs a gateway node: no database, only the proxy in front
// of the API nodes, with its health checks, metrics and, when configured,
// TLS and the HTTP to HTTPS redirect. It returns when ctx is done and the
// listeners are closed.
func ServeGateway(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := telemetry.NewRegistry()
	gc := gateway.Config{
		DiscoverDNS: cfg.GatewayDiscoverDNS, DiscoverPort: cfg.GatewayDiscoverPort,
		Policy: cfg.GatewayPolicy, CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey,
		TrustedProxies: cfg.Proxies(), Logger: log, Metrics: reg,
	}
	for _, u := range strings.Split(cfg.GatewayUpstreams, ",") {
		if u = strings.TrimSpace(u); u != "" {
			gc.Upstreams = append(gc.Upstreams, u)
		}
	}
	g, err := gateway.New(gc)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	go func() { errc <- g.Run(ctx) }()
	go func() { errc <- g.Serve(ctx, ln) }()
	n := 2
	if cfg.HTTPRedirect != "" {
		rln, err := net.Listen("tcp", cfg.HTTPRedirect)
		if err != nil {
			cancel()
			ln.Close()
			return fmt.Errorf("listen on %s: %w", cfg.HTTPRedirect, err)
		}
		go func() { errc <- g.ServeRedirect(ctx, rln) }()
		n++
	}
	if cfg.Metrics {
		addr := cfg.MetricsHTTP
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			cancel()
			ln.Close()
			return fmt.Errorf("listen for metrics on %s: %w", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", telemetry.MetricsHandler(reg, log))
		mux.Handle("GET "+gateway.DefaultStatusPath, g.StatusHandler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		go func() {
			if err := srv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("gateway metrics listener", "err", err)
			}
		}()
		log.Info("gateway metrics and status", "metrics", "http://"+mln.Addr().String()+"/metrics",
			"status", "http://"+mln.Addr().String()+gateway.DefaultStatusPath)
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	log.Info("strata gateway is serving", "addr", scheme+"://"+ln.Addr().String(), "upstreams", cfg.GatewayUpstreams,
		"discover", cfg.GatewayDiscoverDNS, "policy", cfg.GatewayPolicy)
	var first error
	for range n {
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
