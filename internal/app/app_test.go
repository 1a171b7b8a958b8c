package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/config"
)

// TestReadyNeedsMigrations: a node with migration files it has not applied
// is not ready, and becomes ready once they are.
func TestReadyNeedsMigrations(t *testing.T) {
	cfg := config.Default()
	cfg.Dir = t.TempDir()
	cfg.Automigrate = false
	migs := cfg.MigrationsPath()
	os.MkdirAll(migs, 0o755)
	m := `{"id":"20260101000000000000_create_notes","up":[{"op":"create","collection":{"id":"c1","name":"notes","type":"document"}}],"down":[{"op":"delete","name":"notes"}]}`
	os.WriteFile(filepath.Join(migs, "20260101000000000000_create_notes.json"), []byte(m), 0o600)
	ctx := context.Background()
	a, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.ready(ctx); err == nil || !strings.Contains(err.Error(), "1 migrations are not applied") {
		t.Errorf("ready with a pending migration: %v", err)
	}
	if _, err := a.Records().Up(ctx, migs); err != nil {
		t.Fatal(err)
	}
	if err := a.ready(ctx); err != nil {
		t.Errorf("ready after up: %v", err)
	}
}
