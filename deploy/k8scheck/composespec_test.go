package k8scheck

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeSpec loads deploy/compose.yaml with compose-go, the loader
// Docker Compose itself uses: the Compose JSON schema, interpolation, YAML
// merge keys, and the consistency checks of a project (services, volumes
// and networks that exist, no dependency cycles).
func TestComposeSpec(t *testing.T) {
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("strata", true)
	})
	if err != nil {
		t.Fatal(err)
	}
	names := p.ServiceNames()
	slices.Sort(names)
	want := []string{"api-1", "api-2", "api-3", "gateway", "nats", "postgres", "postgres-replica", "redis", "strata-init", "worker"}
	if !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}
	for _, name := range []string{"api-1", "worker", "gateway", "strata-init"} {
		s := p.Services[name]
		if s.Image != "strata:dev" || s.Build == nil || filepath.Clean(s.Build.Context) != filepath.Clean(filepath.Join(filepath.Dir(abs), "..")) {
			t.Errorf("%s: image %q, build %+v: want strata:dev built from the repository root", name, s.Image, s.Build)
		}
	}
	if v := p.Services["api-2"].Environment["STRATA_DB_URL"]; v == nil || !strings.Contains(*v, "@postgres:5432/") {
		t.Errorf("api-2: STRATA_DB_URL not merged from x-strata-env: %v", v)
	}
	if dep, ok := p.Services["api-3"].DependsOn["strata-init"]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("api-3: depends_on strata-init %+v", dep)
	}
}

func TestComposeSpecRejects(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	data := "services:\n  a:\n    image: redis:7.4.6\n    depend_on: [b]\n  b:\n    image: redis:7.4.6\n"
	if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir: dir, ConfigFiles: []types.ConfigFile{{Filename: file}}, Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("strata", true) })
	if err == nil || !strings.Contains(err.Error(), "depend_on") {
		t.Errorf("a misspelt key: want an error naming depend_on, got %v", err)
	}
}
