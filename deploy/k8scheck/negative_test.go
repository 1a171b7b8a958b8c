package k8scheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyDir copies the manifests of deploy/kubernetes (without examples) to a
// temporary directory.
func copyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// edit replaces the first match of re in dir/file with repl, failing when
// there is none, so that a test cannot pass by editing nothing.
func edit(t *testing.T, dir, file, re, repl string) {
	t.Helper()
	path := filepath.Join(dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rx := regexp.MustCompile(re)
	loc := rx.FindIndex(data)
	if loc == nil {
		t.Fatalf("%s: no match for %q", file, re)
	}
	out := append([]byte{}, data[:loc[0]]...)
	out = append(out, rx.Expand(nil, []byte(repl), data, rx.FindSubmatchIndex(data))...)
	out = append(out, data[loc[1]:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// problems loads and checks dir and returns every problem as one string.
func problems(dir string) string {
	s, err := LoadDir(dir)
	if err != nil {
		return err.Error()
	}
	if err := errors.Join(s.Check(Options{ConfigMap: configMap})...); err != nil {
		return err.Error()
	}
	return "no problems"
}

// TestManifestMistakes breaks the manifests one way at a time; the checker
// must catch each.
func TestManifestMistakes(t *testing.T) {
	type mutation struct{ file, re, repl string }
	cases := []struct {
		name  string
		edits []mutation
		want  string
	}{
		{"misspelt field", []mutation{{"api.yaml", `readinessProbe:`, `readinesProbe:`}}, `api.yaml: document 0: Deployment: error unmarshaling JSON: while decoding JSON: json: unknown field "readinesProbe"`},
		{"field in the wrong case", []mutation{{"api.yaml", `readinessProbe:`, `ReadinessProbe:`}}, `did you mean "readinessProbe"`},
		{"wrong type", []mutation{{"api.yaml", `replicas: 3`, `replicas: three`}}, `cannot unmarshal`},
		{"duplicate key", []mutation{{"worker.yaml", `(?m)^  replicas: 2$`, "  replicas: 2\n  replicas: 3"}}, `already set`},
		{"unknown kind", []mutation{{"serviceaccount.yaml", `kind: ServiceAccount`, `kind: ServiceAcount`}}, `not a kind this check knows`},
		{"missing readiness probe", []mutation{{"api.yaml", `(?s)          readinessProbe:.*?failureThreshold: 2\n`, ``}}, `container strata: no readiness probe`},
		{"liveness on /readyz", []mutation{{"worker.yaml", `(?s)(livenessProbe:\s+httpGet:\s+path:) /healthz`, `$1 /readyz`}}, `the liveness probe gets "/readyz", want /healthz`},
		{"probe on a port that is not there", []mutation{{"gateway.yaml", `(?s)(startupProbe:\s+httpGet:\s+path: /healthz\s+port:) http`, `$1 web`}}, `the startup probe's port web is not a port`},
		{"no memory limit", []mutation{{"api.yaml", `(?m)^              memory: 1Gi\n`, ``}}, `no memory limit`},
		{"root allowed", []mutation{{"worker.yaml", `runAsNonRoot: true`, `runAsNonRoot: false`}, {"worker.yaml", `runAsNonRoot: true`, `runAsNonRoot: false`}}, `container strata: runAsNonRoot is not true`},
		{"writable root", []mutation{{"gateway.yaml", `readOnlyRootFilesystem: true`, `readOnlyRootFilesystem: false`}}, `readOnlyRootFilesystem is not true`},
		{"capabilities kept", []mutation{{"migrate-job.yaml", `drop: \["ALL"\]`, `drop: ["NET_RAW"]`}}, `capabilities do not drop ALL`},
		{"latest image", []mutation{{"api.yaml", `strata:0.1.0`, `strata:latest`}}, `the tag latest is not pinned`},
		{"untagged image", []mutation{{"worker.yaml", `strata:0.1.0`, `strata`}}, `has no tag`},
		{"selector misses the pods", []mutation{{"api.yaml", `(?s)(matchLabels:\s+app.kubernetes.io/name: strata\s+app.kubernetes.io/component:) api`, `$1 apis`}}, `does not select the pod template's labels`},
		{"PDB selects nothing", []mutation{{"worker.yaml", `(?s)(kind: PodDisruptionBudget.*component:) worker\n`, "$1 workers\n"}}, `selects the pods of 0 Deployments`},
		{"PDB blocks drains", []mutation{{"gateway.yaml", `(?s)(kind: PodDisruptionBudget.*?)maxUnavailable: 1`, `${1}minAvailable: 2`}}, `lets no pod be evicted`},
		{"HPA targets nothing", []mutation{{"api.yaml", `(?s)(scaleTargetRef:.*?name:) strata-api`, `$1 strata-apis`}}, `scaleTargetRef: no Deployment strata-apis`},
		{"grace period too short", []mutation{{"api.yaml", `terminationGracePeriodSeconds: 30`, `terminationGracePeriodSeconds: 15`}}, `terminationGracePeriodSeconds must exceed the drain delay plus the shutdown timeout (15s)`},
		{"no topology spread", []mutation{{"gateway.yaml", `(?s)      topologySpreadConstraints:.*?component: gateway\n.*?component: gateway\n`, ``}}, `2 replicas and no topologySpreadConstraints`},
		{"missing ConfigMap", []mutation{{"worker.yaml", `name: strata-config`, `name: strata-conf`}}, `ConfigMap strata-conf is not in the manifests`},
		{"missing Secret", []mutation{{"api.yaml", `secretName: strata-keys`, `secretName: strata-key`}}, `Secret strata-key is neither`},
		{"Service selects nothing", []mutation{{"gateway.yaml", `(?s)(kind: Service.*?selector:.*?component:) gateway`, `$1 gw`}}, `selects no workload's pods`},
		{"gateway discovers a ClusterIP", []mutation{{"gateway.yaml", `strata-api-headless.strata`, `strata-gateway.strata`}}, `is not headless`},
		{"role does not match", []mutation{{"worker.yaml", `"--roles", "worker"`, `"--roles", "api"`}}, `--roles "api" is not the component label "worker"`},
		{"real value in the template", []mutation{{"secret.example.yaml", `CHANGE_ME@redis`, `hunter2@redis`}}, `stringData.STRATA_REDIS_URL has no CHANGE_ME placeholder`},
		{"unlisted manifest", []mutation{{"kustomization.yaml", `(?m)^  - networkpolicy.yaml\n`, ``}}, `networkpolicy.yaml is in`},
		{"template applied", []mutation{{"kustomization.yaml", `(?m)^  - namespace.yaml\n`, "  - namespace.yaml\n  - secret.example.yaml\n"}}, `applies secret.example.yaml`},
		{"network policy on a missing port", []mutation{{"networkpolicy.yaml", `port: metrics`, `port: metric`}}, `ingress port metric is not a container port`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t)
			for _, m := range tc.edits {
				edit(t, dir, m.file, m.re, m.repl)
			}
			got := problems(dir)
			if !strings.Contains(got, tc.want) {
				t.Errorf("want a problem containing %q, got:\n%s", tc.want, got)
			}
		})
	}
}

func TestComposeMistakes(t *testing.T) {
	orig, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, re, repl, want string }{
		{"misspelt key", `(?m)^    depends_on:\n      postgres:\n        condition: service_healthy\n    healthcheck:`, "    depend_on:\n      postgres:\n        condition: service_healthy\n    healthcheck:", `service postgres-replica: error unmarshaling JSON: while decoding JSON: json: unknown field "depend_on"`},
		{"key in the wrong case", `(?m)^    read_only: true\n    tmpfs:\n      - /tmp\n    cap_drop: \[ALL\]\n    security_opt: \["no-new-privileges:true"\]\n    restart: "no"`, "    Read_Only: true\n    tmpfs:\n      - /tmp\n    cap_drop: [ALL]\n    security_opt: [\"no-new-privileges:true\"]\n    restart: \"no\"", `service strata-init: field .Read_Only: unknown field, did you mean "read_only"`},
		{"latest image", `redis:7.4.6`, `redis:latest`, `the tag latest is not pinned`},
		{"wrong major", `(?m)^    image: postgres:15.14\n    restart: unless-stopped\n    environment:`, "    image: postgres:16.4\n    restart: unless-stopped\n    environment:", `image "postgres:16.4", want postgres:15.*`},
		{"dependency not health-gated", `(?s)(strata-init:.*?depends_on:\s+postgres:\s+condition:) service_healthy`, `$1 service_started`, `want service_healthy`},
		{"no healthcheck", `(?s)    healthcheck:\n      test: \["CMD", "redis-cli", "ping"\]\n      interval: 2s\n      timeout: 3s\n      retries: 30\n`, ``, `service redis: no healthcheck test`},
		{"no JetStream", `"--jetstream", `, ``, `JetStream is not enabled`},
		{"replica without basebackup", `pg_basebackup -h postgres`, `pg_dump -h postgres`, `must clone the primary with pg_basebackup -R`},
		{"keys volume writable on a node", `(?m)^    - strata-shared:/data:ro$`, `    - strata-shared:/data`, `does not mount the shared keys volume read-only`},
		{"gateway misses an upstream", `,http://api-3:8090`, ``, `--gateway-upstreams "http://api-1:8090,http://api-2:8090"`},
		{"API node published", `(?m)^  api-2:\n    <<: \*strata-node\n`, "  api-2:\n    <<: *strata-node\n    ports: [\"8091:8090\"]\n", `service api-2: publishes ports`},
		{"undeclared volume", `(?m)^  nats-data:\n`, ``, `volume nats-data is not declared`},
		{"grace period too short", `(?m)^  stop_grace_period: 20s$`, `  stop_grace_period: 10s`, `stop_grace_period "10s" must exceed`},
		{"two workers", `(?m)^  worker:\n`, "  worker-2:\n    <<: *strata-node\n    command: [\"serve\", \"--roles\", \"worker\"]\n  worker:\n", `2 services serve --roles worker`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rx := regexp.MustCompile(tc.re)
			if !rx.Match(orig) {
				t.Fatalf("no match for %q", tc.re)
			}
			loc := rx.FindSubmatchIndex(orig)
			data := append([]byte{}, orig[:loc[0]]...)
			data = rx.Expand(data, []byte(tc.repl), orig, loc)
			data = append(data, orig[loc[1]:]...)
			var got string
			c, err := DecodeCompose(data)
			if err != nil {
				got = err.Error()
			} else {
				got = fmt.Sprint(errors.Join(c.Check(ComposeOptions{Dir: filepath.Dir(composeFile), StrataImage: strataImage})...))
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("want a problem containing %q, got:\n%s", tc.want, got)
			}
		})
	}
}

func TestDockerfileMistakes(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, old, new, want string }{
		{"root user", "USER 65532:65532", "USER root", `runs as "root"`},
		{"no user", "USER 65532:65532\n", "", `runs as ""`},
		{"unpinned build image", "ARG GO_IMAGE=golang:1.26.8", "ARG GO_IMAGE=golang", `has no tag`},
		{"build image behind go.mod", "ARG GO_IMAGE=golang:1.26.8", "ARG GO_IMAGE=golang:1.25.3", `but go.mod says go 1.26.8`},
		{"single stage", "FROM scratch\n", "", `1 stages, want a multi-stage build`},
		{"cgo on", "CGO_ENABLED=0 GOOS", "CGO_ENABLED=1 GOOS", `has no CGO_ENABLED=0`},
		{"no entrypoint", `ENTRYPOINT ["/strata"]`, `ENTRYPOINT ["/bin/strata"]`, `no ENTRYPOINT ["/strata"]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("the Dockerfile has no %q", tc.old)
			}
			df, err := ParseDockerfile([]byte(strings.Replace(string(orig), tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			got := errors.Join(df.Check("1.26.8")...)
			if got == nil || !strings.Contains(got.Error(), tc.want) {
				t.Errorf("want a problem containing %q, got: %v", tc.want, got)
			}
		})
	}
}

func TestDockerignoreMistake(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("internal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Ignored(dir, []string{"go.mod", "internal/app/app.go", "cmd/strata/main.go"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "internal/app/app.go" {
		t.Errorf("Ignored = %v, want [internal/app/app.go]", got)
	}
}
