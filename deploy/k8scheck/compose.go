package k8scheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Compose is the part of the Compose specification that deploy/compose.yaml
// uses. Decoding is strict: a key outside it is an error, so a misspelt key
// (which Compose would reject too) fails here. Add a field when the file
// needs a key that is not here.
type Compose struct {
	Name     string                     `json:"name"`
	Services map[string]ComposeService  `json:"services"`
	Networks map[string]*ComposeNetwork `json:"networks,omitempty"`
	Volumes  map[string]*struct{}       `json:"volumes,omitempty"`
}

type ComposeService struct {
	Image           string                      `json:"image"`
	Build           *ComposeBuild               `json:"build,omitempty"`
	Command         StringOrList                `json:"command,omitempty"`
	Entrypoint      StringOrList                `json:"entrypoint,omitempty"`
	Environment     map[string]string           `json:"environment,omitempty"`
	User            string                      `json:"user,omitempty"`
	Volumes         []string                    `json:"volumes,omitempty"`
	Ports           []string                    `json:"ports,omitempty"`
	Healthcheck     *ComposeHealthcheck         `json:"healthcheck,omitempty"`
	DependsOn       map[string]ComposeDependsOn `json:"depends_on,omitempty"`
	Restart         string                      `json:"restart,omitempty"`
	ReadOnly        bool                        `json:"read_only,omitempty"`
	Tmpfs           []string                    `json:"tmpfs,omitempty"`
	CapDrop         []string                    `json:"cap_drop,omitempty"`
	SecurityOpt     []string                    `json:"security_opt,omitempty"`
	StopGracePeriod string                      `json:"stop_grace_period,omitempty"`
	Networks        []string                    `json:"networks,omitempty"`
}

type ComposeBuild struct {
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
}

type ComposeHealthcheck struct {
	Test        []string `json:"test"`
	Interval    string   `json:"interval,omitempty"`
	Timeout     string   `json:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	StartPeriod string   `json:"start_period,omitempty"`
}

type ComposeDependsOn struct {
	Condition string `json:"condition"`
}

type ComposeNetwork struct {
	IPAM *struct {
		Config []struct {
			Subnet string `json:"subnet"`
		} `json:"config"`
	} `json:"ipam,omitempty"`
}

// StringOrList is a Compose command or entrypoint: a list, or a string.
type StringOrList []string

func (s *StringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringOrList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = list
	return nil
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// Interpolate does Compose's variable substitution with every variable
// unset: ${VAR:-default} and ${VAR-default} give the default, ${VAR} and
// $VAR give "", $$ gives $.
func Interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		if sub[2] != "" {
			return sub[3]
		}
		return ""
	})
}

func interpolateAll(v any) any {
	switch t := v.(type) {
	case string:
		return Interpolate(t)
	case []any:
		for i := range t {
			t[i] = interpolateAll(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = interpolateAll(t[k])
		}
	}
	return v
}

// DecodeCompose decodes a Compose file strictly, after dropping the
// top-level extension fields (x-*, used for YAML anchors) and substituting
// variables with their defaults.
func DecodeCompose(data []byte) (*Compose, error) {
	var raw map[string]any
	if err := yaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, err
	}
	for k := range raw {
		if strings.HasPrefix(k, "x-") {
			delete(raw, k)
		}
	}
	interpolateAll(raw)
	// Each service on its own first, so that an error names the service.
	services, _ := raw["services"].(map[string]any)
	var errs []error
	for name, svc := range services {
		b, err := json.Marshal(svc)
		if err != nil {
			return nil, err
		}
		var s ComposeService
		if err := yaml.UnmarshalStrict(b, &s); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
			continue
		}
		var out any
		b, _ = json.Marshal(s)
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		if err := sameCase(svc, out, ""); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var c Compose
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ComposeOptions are the facts the compose checks compare with.
type ComposeOptions struct {
	// Dir is the directory of the compose file: build contexts and bind
	// mounts are relative to it.
	Dir string
	// StrataImage is the repository of the image built from the Dockerfile.
	StrataImage string
}

// StrataServices returns the names of the services that run the strata
// image, sorted.
func (c *Compose) StrataServices(image string) []string {
	var names []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, image+":") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Check checks the topology of the cluster the file describes.
func (c *Compose) Check(opt ComposeOptions) []error {
	var errs []error
	add := func(svc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("service %s: %s", svc, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		errs = append(errs, errors.New("no project name"))
	}

	// The infrastructure: pinned major versions, each with a healthcheck.
	infra := map[string]string{
		"postgres":         "postgres:15.",
		"postgres-replica": "postgres:15.",
		"redis":            "redis:7.",
		"nats":             "nats:2.",
	}
	for name, prefix := range infra {
		s, ok := c.Services[name]
		if !ok {
			errs = append(errs, fmt.Errorf("no service %s", name))
			continue
		}
		if !strings.HasPrefix(s.Image, prefix) {
			add(name, "image %q, want %s*", s.Image, prefix)
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || (s.Healthcheck.Test[0] != "CMD" && s.Healthcheck.Test[0] != "CMD-SHELL") {
			add(name, "no healthcheck test")
		}
	}
	if s, ok := c.Services["nats"]; ok {
		if v := strings.TrimPrefix(strings.SplitN(s.Image, "-", 2)[0], "nats:2."); v != "" {
			minor, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
			if err != nil || minor < 10 {
				add("nats", "image %q: want NATS 2.10 or newer", s.Image)
			}
		}
		if !slices.Contains(s.Command, "--jetstream") && !slices.Contains(s.Command, "-js") {
			add("nats", "JetStream is not enabled (--jetstream)")
		}
	}
	if s, ok := c.Services["postgres-replica"]; ok {
		script := strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " ")
		for _, want := range []string{"pg_basebackup", " -R", "-h postgres"} {
			if !strings.Contains(script, want) {
				add("postgres-replica", "its start script has no %q: it must clone the primary with pg_basebackup -R", want)
			}
		}
	}

	for name, s := range c.Services {
		if err := CheckImage(s.Image); err != nil {
			add(name, "%v", err)
		}
		for dep, d := range s.DependsOn {
			ds, ok := c.Services[dep]
			if !ok {
				add(name, "depends on %s, which is not a service", dep)
				continue
			}
			switch {
			case ds.Healthcheck != nil && d.Condition != "service_healthy":
				add(name, "depends on %s, which has a healthcheck, with condition %q; want service_healthy", dep, d.Condition)
			case ds.Restart == "no" && d.Condition != "service_completed_successfully":
				add(name, "depends on the one-shot %s with condition %q; want service_completed_successfully", dep, d.Condition)
			case d.Condition != "service_healthy" && d.Condition != "service_started" && d.Condition != "service_completed_successfully":
				add(name, "depends on %s with condition %q", dep, d.Condition)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(opt.Dir, src)); err != nil {
					add(name, "bind mount %s: %v", src, err)
				}
				continue
			}
			if _, ok := c.Volumes[src]; !ok {
				add(name, "volume %s is not declared", src)
			}
		}
		for _, n := range s.Networks {
			if _, ok := c.Networks[n]; !ok {
				add(name, "network %s is not declared", n)
			}
		}
	}
	if cycle := dependencyCycle(c); cycle != "" {
		errs = append(errs, fmt.Errorf("depends_on has a cycle: %s", cycle))
	}

	// The strata services: one image, built from the repository.
	strata := c.StrataServices(opt.StrataImage)
	roles := map[string][]string{}
	for _, name := range strata {
		s := c.Services[name]
		if s.Build == nil {
			add(name, "no build section: the strata image is built from the repository's Dockerfile")
		} else {
			df := s.Build.Dockerfile
			if df == "" {
				df = "Dockerfile"
			}
			if _, err := os.Stat(filepath.Join(opt.Dir, s.Build.Context, df)); err != nil {
				add(name, "build: %v", err)
			}
			if _, err := os.Stat(filepath.Join(opt.Dir, s.Build.Context, "go.mod")); err != nil {
				add(name, "build context %s is not the repository root", s.Build.Context)
			}
		}
		if s.Image != c.Services[strata[0]].Image {
			add(name, "image %q differs from %s's %q", s.Image, strata[0], c.Services[strata[0]].Image)
		}
		if !s.ReadOnly {
			add(name, "read_only is not true")
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			add(name, "cap_drop does not hold ALL")
		}
		if s.User != "" {
			add(name, "user %q overrides the image's unprivileged user", s.User)
		}
		if len(s.Command) == 0 {
			add(name, "no command")
			continue
		}
		switch s.Command[0] {
		case "serve":
			r, _ := Flag(s.Command, "roles")
			roles[r] = append(roles[r], name)
			grace := time.Duration(0)
			for _, k := range []string{"STRATA_DRAIN_DELAY", "STRATA_SHUTDOWN_TIMEOUT"} {
				d, err := time.ParseDuration(s.Environment[k])
				if err != nil {
					add(name, "%s: %v", k, err)
				}
				grace += d
			}
			if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= grace {
				add(name, "stop_grace_period %q must exceed the drain delay plus the shutdown timeout (%s)", s.StopGracePeriod, grace)
			}
			if r != "gateway" {
				if !slices.Contains(s.Volumes, "strata-shared:/data:ro") {
					add(name, "does not mount the shared keys volume read-only at /data (strata-shared:/data:ro)")
				}
				if c.Services[name].DependsOn["strata-init"].Condition != "service_completed_successfully" {
					add(name, "does not wait for strata-init to complete")
				}
				if !strings.HasPrefix(s.Environment["STRATA_DB_URL"], "postgres://") {
					add(name, "STRATA_DB_URL is not a postgres:// URL: nodes of a cluster share PostgreSQL")
				}
				if s.Environment["STRATA_NATS_URL"] == "" || s.Environment["STRATA_REDIS_URL"] == "" {
					add(name, "STRATA_NATS_URL or STRATA_REDIS_URL is not set: nodes of a cluster share NATS and Redis")
				}
			}
		case "migrate":
			if !slices.Contains(s.Volumes, "strata-shared:/data") {
				add(name, "does not mount the shared keys volume writable at /data, where it creates the keys")
			}
		}
	}
	want := map[string]int{"api": 3, "worker": 1, "gateway": 1}
	for r, n := range want {
		if len(roles[r]) != n {
			errs = append(errs, fmt.Errorf("%d services serve --roles %s (%v), want %d", len(roles[r]), r, roles[r], n))
		}
	}
	for r := range roles {
		if _, ok := want[r]; !ok {
			errs = append(errs, fmt.Errorf("services %v serve --roles %q", roles[r], r))
		}
	}
	for _, gw := range roles["gateway"] {
		s := c.Services[gw]
		ups, _ := Flag(s.Command, "gateway-upstreams")
		var wantUps []string
		for _, api := range roles["api"] {
			wantUps = append(wantUps, "http://"+api+":8090")
		}
		got := strings.Split(ups, ",")
		slices.Sort(got)
		if !slices.Equal(got, wantUps) {
			add(gw, "--gateway-upstreams %q, want the API services %v", ups, wantUps)
		}
		if !slices.Contains(s.Ports, "8080:8090") {
			add(gw, "does not publish 8080:8090")
		}
		for _, api := range roles["api"] {
			if _, ok := s.DependsOn[api]; !ok {
				add(gw, "does not depend on %s", api)
			}
		}
	}
	for name, s := range c.Services {
		if len(s.Ports) > 0 && !slices.Contains(roles["gateway"], name) {
			add(name, "publishes ports %v; only the gateway is published", s.Ports)
		}
	}
	return errs
}

func dependencyCycle(c *Compose) string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var path []string
	var visit func(string) string
	visit = func(n string) string {
		color[n] = grey
		path = append(path, n)
		deps := make([]string, 0, len(c.Services[n].DependsOn))
		for d := range c.Services[n].DependsOn {
			deps = append(deps, d)
		}
		slices.Sort(deps)
		for _, d := range deps {
			switch color[d] {
			case grey:
				return strings.Join(append(path, d), " -> ")
			case white:
				if cyc := visit(d); cyc != "" {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		color[n] = black
		return ""
	}
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if color[n] == white {
			if cyc := visit(n); cyc != "" {
				return cyc
			}
		}
	}
	return ""
}
