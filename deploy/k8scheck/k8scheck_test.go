package k8scheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	repoRoot    = "../.."
	k8sDir      = "../kubernetes"
	composeFile = "../compose.yaml"
	configMap   = "strata-config"
	strataImage = "strata"
)

func loadSet(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestManifests(t *testing.T) {
	s := loadSet(t, k8sDir)
	for _, err := range s.Check(Options{ConfigMap: configMap}) {
		t.Error(err)
	}
}

// TestTopology pins the reference setup the README describes.
func TestTopology(t *testing.T) {
	s := loadSet(t, k8sDir)
	deployments := map[string]struct {
		replicas int32
		roles    string
	}{
		"strata-api":     {3, "api"},
		"strata-worker":  {2, "worker"},
		"strata-gateway": {2, "gateway"},
	}
	for name, want := range deployments {
		o := s.find("Deployment", "strata", name)
		if o == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		d := o.Obj.(*appsv1.Deployment)
		if got := replicas(d.Spec.Replicas); got != want.replicas {
			t.Errorf("%s: %d replicas, want %d", name, got, want.replicas)
		}
		if roles, _ := Flag(d.Spec.Template.Spec.Containers[0].Args, "roles"); roles != want.roles {
			t.Errorf("%s: --roles %q, want %q", name, roles, want.roles)
		}
		if s.find("PodDisruptionBudget", "strata", name) == nil {
			t.Errorf("%s has no PodDisruptionBudget of the same name", name)
		}
	}
	for _, name := range []string{"strata-api", "strata-gateway"} {
		if s.find("HorizontalPodAutoscaler", "strata", name) == nil {
			t.Errorf("%s has no HorizontalPodAutoscaler", name)
		}
	}
	if o := s.find("Service", "strata", "strata-api-headless"); o == nil || o.Obj.(*corev1.Service).Spec.ClusterIP != corev1.ClusterIPNone {
		t.Error("no headless Service strata-api-headless")
	}
	if o := s.find("Service", "strata", "strata-gateway"); o == nil || o.Obj.(*corev1.Service).Spec.Type != corev1.ServiceTypeClusterIP {
		t.Error("no ClusterIP Service strata-gateway")
	}
	if s.find("Job", "strata", "strata-migrate") == nil {
		t.Error("no Job strata-migrate")
	}
	var templates []string
	for _, o := range s.Templates {
		templates = append(templates, o.Name)
	}
	slices.Sort(templates)
	if !slices.Equal(templates, []string{"strata-env", "strata-keys"}) {
		t.Errorf("the Secret template holds %v, want strata-env and strata-keys", templates)
	}
}

// TestExamples checks the documented examples, which are not core kinds
// (the CloudNativePG Cluster) or not manifests (Helm values), for syntax.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(k8sDir, "examples", "*.y*ml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckYAMLSyntax(filepath.Base(f), data, !strings.HasSuffix(f, "-values.yaml")); err != nil {
			t.Error(err)
		}
	}
}

func loadCompose(t *testing.T, data []byte) *Compose {
	t.Helper()
	c, err := DecodeCompose(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompose(t *testing.T) {
	data, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t, data)
	for _, err := range c.Check(ComposeOptions{Dir: filepath.Dir(composeFile), StrataImage: strataImage}) {
		t.Error(err)
	}
	if got := c.StrataServices(strataImage); len(got) != 6 {
		t.Errorf("strata services %v, want strata-init, api-1..3, worker and gateway", got)
	}
}

func TestInterpolate(t *testing.T) {
	for in, want := range map[string]string{
		"strata:${STRATA_VERSION:-dev}":  "strata:dev",
		"a${X-b}c":                       "abc",
		"${UNSET}x":                      "x",
		"$$PGDATA/x":                     "$PGDATA/x",
		"p://u:${PW:-s}@h/${DB:-d}?x=$Y": "p://u:s@h/d?x=",
	} {
		if got := Interpolate(in); got != want {
			t.Errorf("Interpolate(%q) = %q, want %q", in, got, want)
		}
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// strataBinary is STRATA_BIN, or a strata built from the repository.
func strataBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STRATA_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k8scheck-strata-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "strata")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/strata")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("building strata: %v", binErr)
	}
	return binPath
}

// TestConfigCheck runs `strata config check` with the environment and the
// flags of every container and Compose service: each variable and flag must
// be one strata knows, with a valid value.
func TestConfigCheck(t *testing.T) {
	bin := strataBinary(t)
	s := loadSet(t, k8sDir)
	data := func(kind, name string) map[string]string {
		for _, o := range append(slices.Clone(s.Objects), s.Templates...) {
			if o.Kind != kind || o.Name != name {
				continue
			}
			switch obj := o.Obj.(type) {
			case *corev1.ConfigMap:
				return obj.Data
			case *corev1.Secret:
				return obj.StringData
			}
		}
		t.Fatalf("no %s %s", kind, name)
		return nil
	}
	for _, w := range s.Workloads() {
		for _, c := range w.Template.Spec.Containers {
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				var m map[string]string
				if ef.ConfigMapRef != nil {
					m = data("ConfigMap", ef.ConfigMapRef.Name)
				} else {
					m = data("Secret", ef.SecretRef.Name)
				}
				for k, v := range m {
					env[k] = v
				}
			}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if err := ConfigCheck(bin, env, c.Args); err != nil {
				t.Errorf("%s: container %s: %v", w.Object, c.Name, err)
			}
		}
	}

	composeData, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	c := loadCompose(t, composeData)
	for _, name := range c.StrataServices(strataImage) {
		svc := c.Services[name]
		if err := ConfigCheck(bin, svc.Environment, svc.Command); err != nil {
			t.Errorf("compose service %s: %v", name, err)
		}
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	df, err := ParseDockerfile(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range df.Check(GoVersion(gomod)) {
		t.Error(err)
	}
}

// TestDockerignore checks that the build context keeps every file the
// binary is built from, and leaves out what it should.
func TestDockerignore(t *testing.T) {
	files, err := BuildFiles(repoRoot, "./cmd/strata", "timetzdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("go list found only %v", files)
	}
	ignored, err := Ignored(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range ignored {
		t.Errorf(".dockerignore leaves out %s, which the build needs", f)
	}
	out, err := Ignored(repoRoot, []string{".git/config", "bench/go.mod", "deploy/compose.yaml", "strata_data/data.db", "records.test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 5 {
		t.Errorf(".dockerignore leaves out only %v of .git, bench, deploy, strata_data and test binaries", out)
	}
}
