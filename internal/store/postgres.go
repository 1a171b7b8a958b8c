package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/strata-dev/strata/internal/sqldb"
)

// openPostgres opens a pgxpool and serves database/sql on top of it, so the
// SQL written for SQLite's driver runs unchanged apart from the dialect.
func openPostgres(ctx context.Context, p Params) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(p.URL)
	if err != nil {
		return nil, fmt.Errorf("store: parse postgres url: %w", err)
	}
	// JIT compilation costs seconds on the short queries an API runs and
	// saves nothing on them; filters through relations trigger it.
	cfg.ConnConfig.RuntimeParams["jit"] = "off"
	if p.MaxConns > 0 {
		cfg.MaxConns = int32(p.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect postgres %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	out := &DB{dialect: sqldb.Postgres, writer: db, reader: db, closers: []func(){pool.Close}}
	if len(p.Replicas) > 0 {
		if out.replicas, err = openReplicas(p, cfg, db); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return out, nil
}

var pgKeyRE = regexp.MustCompile(`^Key \(([A-Za-z0-9_]+)\)=`)

func classifyPostgres(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	if pe.Code == "23505" { // unique_violation
		ue := &UniqueError{Err: err}
		if m := pgKeyRE.FindStringSubmatch(pe.Detail); m != nil {
			ue.Field = m[1]
		}
		return ue
	}
	return err
}
