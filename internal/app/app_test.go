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
	rep := a.Health().Check(ctx)
	if rep.Ready() || !strings.Contains(rep.Components["migrations"].Error, "1 migrations are not applied") ||
		rep.Components["database"].Status != "up" {
		t.Errorf("ready with a pending migration: %+v", rep)
	}
	if _, err := a.Records().Up(ctx, migs); err != nil {
		t.Fatal(err)
	}
	if rep := a.Health().Check(ctx); !rep.Ready() {
		t.Errorf("ready after up: %+v", rep)
	}
}
