// Package storetest opens databases for tests: SQLite in a temporary
// directory, and PostgreSQL in a throw-away schema of the server named by
// STRATA_TEST_POSTGRES_URL (started by scripts/test), with its streaming
// replica at STRATA_TEST_POSTGRES_REPLICA_URL.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/strata-dev/strata/internal/store"
)

// EnvPostgres names the variable holding the test PostgreSQL URL.
const EnvPostgres = "STRATA_TEST_POSTGRES_URL"

// EnvPostgresReplica names the variable holding the URL of a streaming
// replica of the test PostgreSQL (started by scripts/test).
const EnvPostgresReplica = "STRATA_TEST_POSTGRES_REPLICA_URL"

// Replica returns the URL of the test PostgreSQL's streaming replica, or
// skips the test when there is none; under CI a missing replica fails the
// test. The URL names no schema: store.Open gives replica connections the
// settings of the primary's URL, such as the search_path from Schema.
func Replica(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvPostgresReplica); u != "" && os.Getenv(EnvPostgres) != "" {
		return u
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s or %s is not set; run the tests with scripts/test", EnvPostgres, EnvPostgresReplica)
	}
	t.Skipf("%s is not set", EnvPostgresReplica)
	return ""
}

// Engines lists the engines to test against: sqlite always, postgres when
// a server is configured. Under CI a missing server fails the test rather
// than skipping it silently.
func Engines(t testing.TB) []string {
	t.Helper()
	if os.Getenv(EnvPostgres) != "" {
		return []string{"sqlite", "postgres"}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set; run the tests with scripts/test", EnvPostgres)
	}
	return []string{"sqlite"}
}

// Params returns store parameters for a fresh, empty database of engine,
// removed when the test ends.
func Params(t testing.TB, engine string) store.Params {
	t.Helper()
	switch engine {
	case "sqlite":
		return store.Params{Engine: "sqlite", Path: filepath.Join(t.TempDir(), "data.db"), Readers: 4, MmapSize: 256 << 20}
	case "postgres":
		return store.Params{Engine: "postgres", URL: Schema(t)}
	}
	t.Fatalf("unknown engine %q", engine)
	return store.Params{}
}

// Open opens a fresh database of engine, closed when the test ends.
func Open(t testing.TB, engine string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), Params(t, engine))
	if err != nil {
		t.Fatalf("open %s: %v", engine, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Schema creates a throw-away schema on the test PostgreSQL server and
// returns a URL whose connections use it; the schema is dropped when the
// test ends.
func Schema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("%s is not set", EnvPostgres)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP SCHEMA " + name + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// ScanAll reads every row of rows, each column as the driver gives it,
// and closes rows; cols names the columns.
func ScanAll(rows *sql.Rows) (cols []string, out [][]any, err error) {
	defer rows.Close()
	if cols, err = rows.Columns(); err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		out = append(out, vals)
	}
	return cols, out, rows.Err()
}
