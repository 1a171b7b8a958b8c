package backup

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPGTarget: the password leaves the URL for PGPASSWORD, server
// settings go to PGOPTIONS and pgx's own parameters are dropped.
func TestPGTarget(t *testing.T) {
	tg, err := newPGTarget("postgres://app:s3cr%20t@db.example:5433/strata?sslmode=require&pool_max_conns=10&search_path=tenant_a,public&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tg.dbname, "s3cr") || strings.Contains(tg.dbname, "pool_max_conns") || strings.Contains(tg.dbname, "search_path") {
		t.Errorf("dbname = %q", tg.dbname)
	}
	if want := "postgres://app@db.example:5433/strata?application_name=x&sslmode=require"; tg.dbname != want {
		t.Errorf("dbname = %q, want %q", tg.dbname, want)
	}
	if want := []string{"PGPASSWORD=s3cr t", `PGOPTIONS=-c search_path=tenant_a,public`}; !slices.Equal(tg.env, want) {
		t.Errorf("env = %q, want %q", tg.env, want)
	}
	if want := []string{"tenant_a", "public"}; !slices.Equal(tg.schemas, want) {
		t.Errorf("schemas = %q, want %q", tg.schemas, want)
	}
	tg, _ = newPGTarget("postgres://h/db?password=p%26q&options=-c%20x%3Dy")
	if strings.Contains(tg.dbname, "p&q") || !slices.Contains(tg.env, "PGPASSWORD=p&q") || !strings.Contains(tg.dbname, "options=") {
		t.Errorf("password in the query: %q %q", tg.dbname, tg.env)
	}
}

// TestMissingPGDump: without pg_dump the error says how to install it and
// names pg_basebackup; the password shows nowhere.
func TestMissingPGDump(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Write(context.Background(), nil, Options{Engine: "postgres", PostgresURL: "postgres://u:hunter2@127.0.0.1:1/x", TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "pg_dump is not installed") ||
		!strings.Contains(err.Error(), "apt-get install postgresql-client") || !strings.Contains(err.Error(), "pg_basebackup") {
		t.Errorf("err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the password is in the error: %v", err)
	}
	_, err = Restore(context.Background(), RestoreOptions{Archive: filepath.Join(t.TempDir(), "none.tar.gz"), Engine: "postgres", Layout: testLayout(t.TempDir())})
	if err == nil || !strings.Contains(err.Error(), "none.tar.gz") {
		t.Errorf("restore of a missing archive: %v", err)
	}
}
