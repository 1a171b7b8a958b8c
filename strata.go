// Package strata embeds the Strata backend in a Go program:
//
//	cfg := strata.DefaultConfig()
//	cfg.Dir = "./data"
//	app, err := strata.New(ctx, cfg)
//	if err != nil { ... }
//	defer app.Close()
//	err = app.Run(ctx) // serves until ctx is done
//
// The strata command is built on this package.
package strata

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/strata-dev/strata/internal/app"
	"github.com/strata-dev/strata/internal/config"
)

// Config is Strata's configuration; see DefaultConfig.
type Config = config.Config

// DefaultConfig returns the configuration of a fresh install: SQLite in
// ./strata_data, serving on 127.0.0.1:8090.
func DefaultConfig() Config { return config.Default() }

// Options adjust New.
type Options struct {
	// Logger receives the logs; nil logs to standard error as the
	// configuration says.
	Logger *slog.Logger
}

// App is a running Strata.
type App struct {
	inner *app.App
}

// New validates cfg, opens the database and prepares the API.
func New(ctx context.Context, cfg Config, opts ...Options) (*App, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = app.NewLogger(cfg, os.Stderr)
	}
	a, err := app.Open(ctx, cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	return &App{inner: a}, nil
}

// Run serves on the configured address until ctx is done, then shuts down
// gracefully.
func (a *App) Run(ctx context.Context) error { return a.inner.ListenAndServe(ctx) }

// Serve is Run on a listener of the caller's.
func (a *App) Serve(ctx context.Context, ln net.Listener) error { return a.inner.Serve(ctx, ln) }

// Handler is the HTTP handler of the API, for mounting in another server.
func (a *App) Handler() http.Handler { return a.inner.Handler() }

// Close closes the database. Call it after Run returns.
func (a *App) Close() error { return a.inner.Close() }
