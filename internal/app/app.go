// Package app is the composition root: it turns a configuration into
// running components.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/store"
)

// App is an open Strata: its database, services and HTTP handler.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	db      *store.DB
	recs    *records.Service
	signer  *auth.Signer
	ident   *identity.Service
	handler http.Handler
}

// NewLogger builds the logger the configuration asks for.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Open opens the database and builds every component. With automigrate
// on, it applies pending migration files first.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := store.Open(ctx, store.Params{
		Engine: cfg.Engine(), Path: cfg.SQLitePath(), URL: cfg.DB,
		Readers: cfg.SQLiteReaders, MaxConns: cfg.PostgresMaxConns, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, db: db}
	if err := a.build(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	signer, err := auth.LoadSigner(a.cfg.Dir)
	if err != nil {
		return err
	}
	recs, err := records.New(ctx, records.Options{
		DB: a.db, Secret: signer.Secret("cursor"), MigrationsDir: a.cfg.MigrationsPath(),
		IdempotencyTTL: a.cfg.IdempotencyTTL, Logger: a.log,
	})
	if err != nil {
		return err
	}
	if a.cfg.Automigrate {
		applied, err := recs.Up(ctx, a.cfg.MigrationsPath())
		if err != nil {
			return fmt.Errorf("apply migrations: %w", err)
		}
		for _, id := range applied {
			a.log.Info("applied migration", "id", id)
		}
	}
	a.signer, a.recs = signer, recs
	var mailer identity.Mailer
	if a.cfg.SMTPURL != "" {
		m, err := identity.NewSMTP(a.cfg.SMTPURL, a.cfg.MailFrom)
		if err != nil {
			return err
		}
		mailer = m
	}
	var blocklist map[string]bool
	if a.cfg.PasswordBlocklist != "" {
		if blocklist, err = identity.LoadBlocklist(a.cfg.PasswordBlocklist); err != nil {
			return err
		}
	}
	ident := identity.New(identity.Options{DB: a.db, Records: recs, Signer: signer, Logger: a.log, Mailer: mailer,
		MinPassword: a.cfg.PasswordMinLength, Blocklist: blocklist})
	a.ident = ident
	a.handler = rest.New(rest.Options{
		Records: recs, DB: a.db, Signer: signer, Identity: ident, Logger: a.log,
		MaxBodyBytes: a.cfg.MaxBodyBytes, TokenTTL: a.cfg.TokenTTL, Ready: a.ready,
	})
	return nil
}

// ready reports whether this node may take traffic.
func (a *App) ready(ctx context.Context) error {
	if err := a.db.Ping(ctx); err != nil {
		return err
	}
	n, err := a.recs.Pending(ctx, a.cfg.MigrationsPath())
	if err != nil {
		return rest.NotReady{Reason: "the migrations directory cannot be read"}
	}
	if n > 0 {
		return rest.NotReady{Reason: fmt.Sprintf("%d migrations are not applied; run strata migrate up", n)}
	}
	return nil
}

// Handler is the HTTP handler of the API.
func (a *App) Handler() http.Handler { return a.handler }

// Records is the records service.
func (a *App) Records() *records.Service { return a.recs }

// DB is the database.
func (a *App) DB() *store.DB { return a.db }

// Close waits for emails being sent and closes the database.
func (a *App) Close() error {
	if a.ident != nil {
		a.ident.Close()
	}
	return a.db.Close()
}

// Serve answers HTTP on ln until ctx is done, then stops accepting, lets
// in-flight requests finish within the shutdown timeout, and returns nil.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go a.pruneLoop(bg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("strata is serving", "addr", "http://"+ln.Addr().String(), "engine", a.cfg.Engine(), "dir", a.cfg.Dir)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", a.cfg.ShutdownTimeout, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ListenAndServe listens on the configured address and serves.
func (a *App) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTP, err)
	}
	return a.Serve(ctx, ln)
}

func (a *App) pruneLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := a.db.PruneIdempotent(ctx, time.Now()); err != nil && ctx.Err() == nil {
				a.log.Warn("prune idempotency keys", "err", err)
			} else if n > 0 {
				a.log.Debug("pruned idempotency keys", "count", n)
			}
		}
	}
}

// CreateSuperuser creates a superuser, or sets the password of the
// existing one with the email.
func (a *App) CreateSuperuser(ctx context.Context, email, password string) error {
	email = strings.TrimSpace(email)
	if !strings.Contains(email, "@") {
		return fmt.Errorf("superuser email %q is not an email address", email)
	}
	if len(password) < 10 {
		return errors.New("the password must be at least 10 characters")
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	return a.db.Write(ctx, func(tx *store.Tx) error {
		return store.PutSuperuser(ctx, tx, &store.Superuser{ID: records.NewID(), Email: email, PasswordHash: hash, Created: now, Updated: now})
	})
}
