package deploytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/strata-dev/strata/internal/app"
	"github.com/strata-dev/strata/internal/config"
)

const (
	dashboardFile = "../grafana/strata.json"
	rulesFile     = "../prometheus/alerts.yml"
	rulesTestFile = "../prometheus/alerts_test.yml"
)

// exported is what a Strata exports: metric family name -> type, from the
// "# TYPE" lines of GET /metrics.
type exported map[string]string

// has reports whether name is a series name of an exported family: the
// family itself, or a histogram's _bucket, _count or _sum, or a summary's
// _count or _sum.
func (e exported) has(name string) bool {
	if _, ok := e[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			switch e[base] {
			case "histogram":
				return true
			case "summary":
				return suffix != "_bucket"
			}
		}
	}
	return false
}

func parseExposition(body string) exported {
	e := exported{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			e[f[2]] = f[3]
		}
	}
	return e
}

var (
	strataOnce    sync.Once
	strataMetrics string
	strataErr     error
)

// liveMetrics opens a real Strata (SQLite, in a temporary directory),
// sends it a request so that the per-request families have series, and
// returns the text of its GET /metrics.
func liveMetrics(t *testing.T) string {
	t.Helper()
	strataOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strata-deploytest-")
		if err != nil {
			strataErr = err
			return
		}
		defer os.RemoveAll(dir)
		cfg := config.Default()
		cfg.Dir = dir
		a, err := app.Open(context.Background(), cfg, nil)
		if err != nil {
			strataErr = err
			return
		}
		defer a.Close()
		for _, path := range []string{"/api/v1/collections", "/no/such/path"} {
			a.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		}
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if w.Code != http.StatusOK {
			strataErr = fmt.Errorf("GET /metrics: status %d: %s", w.Code, w.Body)
			return
		}
		strataMetrics = w.Body.String()
	})
	if strataErr != nil {
		t.Fatal(strataErr)
	}
	return strataMetrics
}

// query is one PromQL expression of a monitoring file, and where it is.
type query struct {
	where string // e.g. `panel "Request rate by route" (id 7), target A`
	expr  string
}

// unknownMetrics returns one message per metric that a query uses and
// that is neither exported (known.has) nor in extra (recording rules,
// Prometheus's own series); expressions that cannot be read are reported
// too.
func unknownMetrics(queries []query, known exported, extra map[string]bool) []string {
	var problems []string
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: cannot read %q: %v", q.where, q.expr, err))
			continue
		}
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("%s: %q uses no metric", q.where, q.expr))
		}
		for _, n := range names {
			if !known.has(n) && !extra[n] {
				problems = append(problems, fmt.Sprintf("%s: metric %s is not exported by Strata (in %q)", q.where, n, q.expr))
			}
		}
	}
	return problems
}

// ---- the dashboard -------------------------------------------------------

type panel struct {
	ID         *int            `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's panels, when it is collapsed
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"` // a string, or {"query": "..."}
		} `json:"list"`
	} `json:"templating"`
}

// allPanels flattens the dashboard's panels, rows' panels included.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// dashboardQueries checks the dashboard's structure and returns its PromQL:
// every panel target's expr, and the metric selectors of the template
// variables' label_values() queries.
func dashboardQueries(data []byte) ([]query, []string) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, []string{fmt.Sprintf("not JSON: %v", err)}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if d.UID == "" || d.Title == "" {
		bad("the dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 36 {
		bad("schemaVersion %d: want 36 or later", d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		bad("the dashboard has no panels")
	}
	vars := map[string]string{}
	var queries []query
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		sel := labelValuesRE.FindStringSubmatch(q)
		if sel == nil {
			bad("variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		queries = append(queries, query{fmt.Sprintf("variable %s", v.Name), sel[1]})
	}
	for _, name := range []string{"datasource", "job", "instance"} {
		if _, ok := vars[name]; !ok {
			bad("no %s template variable", name)
		}
	}
	if vars["datasource"] != "datasource" {
		bad("the datasource variable has type %q, want datasource", vars["datasource"])
	}
	ids := map[int]string{}
	graphs := 0
	for _, p := range allPanels(d.Panels) {
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" {
			bad("a %s panel has no title", p.Type)
		}
		if p.ID == nil {
			bad("%s has no id", where)
		} else {
			where = fmt.Sprintf("panel %q (id %d)", p.Title, *p.ID)
			if other, dup := ids[*p.ID]; dup {
				bad("%s: id %d is also panel %q's", where, *p.ID, other)
			}
			ids[*p.ID] = p.Title
		}
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			bad("%s: missing or bad gridPos", where)
		}
		if p.Type == "row" {
			continue
		}
		graphs++
		var ds struct{ Type, UID string }
		if err := json.Unmarshal(p.Datasource, &ds); err != nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
			bad("%s: datasource %s, want {\"type\": \"prometheus\", \"uid\": \"${datasource}\"}", where, p.Datasource)
		}
		if len(p.Targets) == 0 {
			bad("%s has no targets", where)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] {
				bad("%s: refId %q twice", where, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				bad("%s, target %s: no expr", where, tg.RefID)
				continue
			}
			queries = append(queries, query{fmt.Sprintf("%s, target %s", where, tg.RefID), tg.Expr})
		}
	}
	if graphs == 0 {
		bad("the dashboard has rows but no graphs")
	}
	return queries, problems
}

func TestDashboardUsesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	queries, problems := dashboardQueries(data)
	known := parseExposition(liveMetrics(t))
	problems = append(problems, unknownMetrics(queries, known, map[string]bool{"up": true})...)
	for _, p := range problems {
		t.Errorf("%s: %s", dashboardFile, p)
	}
	if len(queries) < 30 {
		t.Errorf("%s: only %d queries found; is the dashboard complete?", dashboardFile, len(queries))
	}
}

// TestDashboardChecker shows that the checks catch what they are for.
func TestDashboardChecker(t *testing.T) {
	known := exported{
		"strata_http_request_duration_seconds": "histogram",
		"go_gc_duration_seconds":               "summary",
		"go_goroutines":                        "gauge",
	}
	const vars = `"templating": {"list": [
		{"name": "datasource", "type": "datasource", "query": "prometheus"},
		{"name": "job", "type": "query", "query": {"query": "label_values(go_goroutines, job)"}},
		{"name": "instance", "type": "query", "query": "label_values(go_goroutines{job=~\"$job\"}, instance)"}]}`
	ds := `"datasource": {"type": "prometheus", "uid": "${datasource}"}, "gridPos": {"h": 8, "w": 8, "x": 0, "y": 0}`
	dash := func(panels string) []byte {
		return []byte(`{"uid": "u", "title": "T", "schemaVersion": 39, ` + vars + `, "panels": [` + panels + `]}`)
	}
	graph := func(id int, title, expr string) string {
		e, _ := json.Marshal(expr)
		return fmt.Sprintf(`{"id": %d, "type": "timeseries", "title": %q, %s, "targets": [{"refId": "A", "expr": %s}]}`, id, title, ds, e)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		errors []string // each a substring of one problem, in order
	}{
		{"good", dash(graph(1, "Latency", `histogram_quantile(0.99, sum by (le) (rate(strata_http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))`) + "," +
			graph(2, "GC", `rate(go_gc_duration_seconds_count[5m]) + go_goroutines + up`)), nil},
		{"made-up metric", dash(graph(1, "Made up", `rate(strata_made_up_total[5m])`)),
			[]string{`panel "Made up" (id 1), target A: metric strata_made_up_total is not exported`}},
		{"made-up metric in a collapsed row", dash(`{"id": 1, "type": "row", "title": "R", "collapsed": true, "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}, "panels": [` +
			graph(2, "Nested", `go_goroutines / strata_nested_gauge`) + `]}`),
			[]string{`panel "Nested" (id 2), target A: metric strata_nested_gauge is not exported`}},
		{"suffix on a gauge", dash(graph(1, "Bad suffix", `go_goroutines_count`)),
			[]string{`metric go_goroutines_count is not exported`}},
		{"summary has no buckets", dash(graph(1, "GC buckets", `go_gc_duration_seconds_bucket`)),
			[]string{`metric go_gc_duration_seconds_bucket is not exported`}},
		{"typo in a function", dash(graph(1, "Typo", `rat(go_goroutines[5m])`)),
			[]string{`panel "Typo" (id 1), target A: cannot read`}},
		{"duplicate ids", dash(graph(1, "One", `go_goroutines`) + "," + graph(1, "Two", `go_goroutines`)),
			[]string{`panel "Two" (id 1): id 1 is also panel "One"'s`}},
		{"no panels", dash(``), []string{"no panels", "no graphs"}},
		{"empty expr", dash(graph(1, "Empty", ``)), []string{`panel "Empty" (id 1), target A: no expr`}},
		{"not JSON", []byte(`{"panels": [`), []string{"not JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queries, problems := dashboardQueries(tc.data)
			problems = append(problems, unknownMetrics(queries, known, map[string]bool{"up": true})...)
			if len(problems) != len(tc.errors) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tc.errors), tc.errors)
			}
			for i, want := range tc.errors {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %q, want it to contain %q", problems[i], want)
				}
			}
		})
	}
}

// ---- the Prometheus rules ------------------------------------------------

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(data, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no rule groups", rulesFile)
	}
	return rf
}

func TestRulesUseExportedMetrics(t *testing.T) {
	rf := readRules(t)
	extra := map[string]bool{"up": true}
	var queries []query
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				extra[r.Record] = true
				queries = append(queries, query{fmt.Sprintf("group %s, record %s", g.Name, r.Record), r.Expr})
			} else {
				queries = append(queries, query{fmt.Sprintf("group %s, alert %s", g.Name, r.Alert), r.Expr})
			}
		}
	}
	body := liveMetrics(t)
	for _, p := range unknownMetrics(queries, parseExposition(body), extra) {
		t.Errorf("%s: %s", rulesFile, p)
	}
	// The latency objective counts requests in the le="0.25" bucket.
	if !regexp.MustCompile(`(?m)^strata_http_request_duration_seconds_bucket\{.*le="0\.25".*\} `).MatchString(body) {
		t.Errorf(`Strata exports no strata_http_request_duration_seconds_bucket{le="0.25"}, which the latency SLO rules in %s count`, rulesFile)
	}
}

func TestAlertsAreComplete(t *testing.T) {
	rf := readRules(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.For == "" {
				t.Errorf("alert %s has no for: duration", r.Alert)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
		}
	}

	// Every alert has a promtool test case in which it fires.
	data, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &tf); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("%s tests alert %s, which %s does not define", rulesTestFile, a.Alertname, rulesFile)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(alerts)) {
		if !fires[n] {
			t.Errorf("%s has no case in which alert %s fires", rulesTestFile, n)
		}
		if !quiet[n] {
			t.Errorf("%s has no case in which alert %s must not fire", rulesTestFile, n)
		}
	}
}
