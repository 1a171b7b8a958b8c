package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Machine is the computer a run ran on.
type Machine struct {
	Host     string `json:"host"`
	Cores    int    `json:"cores"`
	MemoryMB int64  `json:"memory_mib"`
	CPU      string `json:"cpu"`
	Kernel   string `json:"kernel"`
	OS       string `json:"os"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.Host, _ = os.Hostname()
	if kib, err := strconv.ParseInt(procField("/proc/meminfo", "MemTotal", " kB"), 10, 64); err == nil {
		m.MemoryMB = kib / 1024
	}
	m.CPU = procField("/proc/cpuinfo", "model name", "")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, without suffix.
func procField(path, key, suffix string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSuffix(strings.TrimSpace(v), suffix)
		}
	}
	return ""
}

// The Strata targets, each compared with the floor and PocketBase.
var (
	strataNames = []string{"strata-sqlite", "strata-postgres"}
	peers       = []string{"floor", "pocketbase"}
)

// result finds the result of a scenario on a target.
func (r *Report) result(scenario, target string) *Result {
	for i := range r.Results {
		if r.Results[i].Scenario == scenario && r.Results[i].Target == target {
			return &r.Results[i]
		}
	}
	return nil
}

// ratio is a's req/s over b's, as "0.62x", or "-" when either is missing.
func (r *Report) ratio(scenario, a, b string) string {
	ra, rb := r.result(scenario, a), r.result(scenario, b)
	if ra == nil || rb == nil || rb.RPS == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", ra.RPS/rb.RPS)
}

// columns are the targets that ran, in order.
func (r *Report) columns() []string {
	var cols []string
	for _, t := range r.Targets {
		if t.Skipped == "" {
			cols = append(cols, t.Name)
		}
	}
	return cols
}

// busyMachine is the CPU, in cores, that may go to other processes and
// kernel threads during a scenario before its cell is flagged.
const busyMachine = 0.2

// cell is one result in the tables: req/s, p50/p99 and errors.
func cell(res *Result, sep string) string {
	if res == nil {
		return "-"
	}
	s := fmt.Sprintf("%s/s%s%s / %s ms", thousands(res.RPS), sep, num(res.P50), num(res.P99))
	if res.Errors > 0 {
		s += fmt.Sprintf("%s**ERRORS: %d**", sep, res.Errors)
	}
	if res.Note != "" {
		s += sep + "(short rounds)"
	}
	if res.OtherCores > busyMachine {
		s += fmt.Sprintf("%s(%.1f cores busy elsewhere)", sep, res.OtherCores)
	}
	return s
}

// textTable is the table printed at the end of a run.
func textTable(r *Report) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	cols := r.columns()
	fmt.Fprint(tw, "scenario\tcaller\t"+strings.Join(cols, "\t"))
	for _, s := range strataNames {
		for _, p := range peers {
			fmt.Fprintf(tw, "\t%s/%s", short(s), short(p))
		}
	}
	fmt.Fprintln(tw)
	for _, sc := range r.Config.Scenarios {
		fmt.Fprint(tw, sc+"\t"+callerOf(sc))
		for _, t := range cols {
			fmt.Fprint(tw, "\t"+cell(r.result(sc, t), " "))
		}
		for _, s := range strataNames {
			for _, p := range peers {
				fmt.Fprint(tw, "\t"+r.ratio(sc, s, p))
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return b.String()
}

// callerOf is who sends the requests of the scenario called name.
func callerOf(name string) string {
	s, _ := scenarioNamed(name)
	return s.caller.String()
}

func short(name string) string {
	return strings.NewReplacer("strata-sqlite", "sqlite", "strata-postgres", "pg", "pocketbase", "pb").Replace(name)
}

// writeReport writes the report as <date>-<host>.md and .json into dir
// (with -short before the extension for a short run); a later run of the
// same day gets -2, -3 ... rather than replacing an earlier one.
func writeReport(r *Report, dir string) (string, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	name := r.Date + "-" + r.Host
	if r.Config.Short {
		name += "-short"
	}
	base := filepath.Join(dir, name)
	for n := 2; ; n++ {
		if _, err := os.Stat(base + ".md"); errors.Is(err, os.ErrNotExist) {
			break
		}
		base = filepath.Join(dir, fmt.Sprintf("%s-%d", name, n))
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".md", []byte(markdown(r)), 0o644); err != nil {
		return "", "", err
	}
	return base + ".md", base + ".json", nil
}

// markdown renders the report for people.
func markdown(r *Report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	c := r.Config
	p("# Strata benchmark, %s, %s", r.Date, r.Host)
	p("")
	p("Machine: %d cores (%s), %d MiB memory, Linux %s, %s. Built with %s.", r.Machine.Cores, r.Machine.CPU,
		r.Machine.MemoryMB, r.Machine.Kernel, r.Machine.OS, r.Go)
	p("")
	p("Command: `%s`", c.Command)
	p("")
	p("Data: %d posts and %d users (with the user scenarios, %d members and their member_posts), the same on every target. Load: %d connections, closed loop, keep-alive; "+
		"each scenario has a %s warm-up, then %d rounds of %s. req/s is the median of the rounds; p50 / p99 are "+
		"latency percentiles over every request of all rounds together. Non-2xx answers count as errors. "+
		"The load generator runs on the same machine as the targets. Every target stays up through the run; each "+
		"scenario's rounds go to one target at a time, in an order that turns by one each round, so that every "+
		"target meets the same drift of the machine's speed and the ratios come from the same stretch of time.",
		c.Posts, c.Users, c.Members, c.Conns, c.Warmup, c.Rounds, c.Duration)
	p("")
	p("## Results")
	p("")
	cols := r.columns()
	head := "| scenario | caller | " + strings.Join(cols, " | ") + " |"
	sep := "| --- | --- |" + strings.Repeat(" ---: |", len(cols))
	for _, s := range strataNames {
		for _, pe := range peers {
			head += " " + s + " / " + pe + " |"
			sep += " ---: |"
		}
	}
	p("%s", head)
	p("%s", sep)
	for _, sc := range c.Scenarios {
		row := "| " + sc + " | " + callerOf(sc) + " |"
		for _, t := range cols {
			row += " " + cell(r.result(sc, t), "<br>") + " |"
		}
		for _, s := range strataNames {
			for _, pe := range peers {
				row += " " + r.ratio(sc, s, pe) + " |"
			}
		}
		p("%s", row)
	}
	p("")
	p("Each cell: requests per second, then p50 / p99 latency; - where the target does not run the scenario. " +
		"The ratios divide req/s of the same run.")
	if ceiling := r.result("view", "ceiling"); ceiling != nil && ceiling.RPS > 0 {
		for _, s := range strataNames {
			if res := r.result("view-cached", s); res != nil {
				p("")
				p("view-cached on %s against the ceiling's view: %.2fx.", s, res.RPS/ceiling.RPS)
			}
		}
	}
	p("")
	p("Spread and CPU: the slowest and the fastest round in req/s; the target's CPU time (user and system, with "+
		"the PostgreSQL of strata-postgres) per request during its rounds and until it was quiet after each, which "+
		"does not depend on how the cores "+
		"were shared with the load generator; and the CPU used during the rounds outside the processes under test "+
		"(the benchmark, the target, its PostgreSQL), in cores: other programs and kernel threads. A quiet machine "+
		"shows about 0; a cell above is flagged past %.1f.", busyMachine)
	p("")
	p("| scenario | " + strings.Join(cols, " | ") + " |")
	p("| --- |" + strings.Repeat(" ---: |", len(cols)))
	for _, sc := range c.Scenarios {
		row := "| " + sc + " |"
		for _, t := range cols {
			if res := r.result(sc, t); res != nil && len(res.RoundsRPS) > 0 {
				row += fmt.Sprintf(" %s - %s, %.0f µs/req, other %.2f |", thousands(slices.Min(res.RoundsRPS)),
					thousands(slices.Max(res.RoundsRPS)), res.CPUPerRequest, res.OtherCores)
			} else {
				row += " - |"
			}
		}
		p("%s", row)
	}
	p("")
	p("## Targets")
	p("")
	p("| target | version | start to ready (median) | RSS idle at start (median) | data load | RSS idle after load | RSS idle after scenarios |")
	p("| --- | --- | ---: | ---: | --- | ---: | ---: |")
	for _, t := range r.Targets {
		if t.Skipped != "" {
			p("| %s | skipped: %s | | | | | |", t.Name, t.Skipped)
			continue
		}
		load := fmt.Sprintf("%.1f s, %s", t.LoadSeconds, t.LoadHow)
		if t.Name == "ceiling" {
			load = t.LoadHow
		}
		if t.MembersHow != "" {
			load += fmt.Sprintf("; for the user scenarios, %.1f s more: %s", t.MembersSeconds, t.MembersHow)
		}
		p("| %s | %s | %s ms | %.1f MiB | %s | %.1f MiB | %.1f MiB |", t.Name, t.Version, num(t.StartMedianMS),
			float64(t.RSSStartMedianKiB)/1024, load, float64(t.RSSLoadKiB)/1024, float64(t.RSSRunKiB)/1024)
	}
	p("")
	p("Start to ready: from process start until the health endpoint (Strata `/readyz`, PocketBase `/api/health`, "+
		"the others `/healthz`) answers 200, on an empty data directory (strata-postgres: an empty database); "+
		"the median of %d starts. RSS is VmRSS of the target's process (not PostgreSQL's), idle, a second (-short: "+
		"0.2 s) after each of those starts was ready, after the load and after the last scenario. VmRSS counts the "+
		"pages of the executable the process touched (and the kernel mapped around them) as well as its own memory.", c.Starts)
	if st := r.Storage; st != nil {
		p("")
		p("## Storage ceilings")
		p("")
		p("Raw inserts of a post row into a fresh SQLite file with %s, journal_mode %s and synchronous %s (the "+
			"settings of Strata and the floor: a commit reaches the WAL, fsync at checkpoints), from one goroutine "+
			"through a prepared statement, %d rounds of %s each:", st.Driver, st.JournalMode, st.Synchronous,
			len(st.OnePerTxRounds), st.RoundDuration)
		p("")
		p("| rows per transaction | rows/s (median) | rounds |")
		p("| ---: | ---: | --- |")
		p("| 1 | %s | %s |", thousands(st.OnePerTx), roundsText(st.OnePerTxRounds))
		p("| %d | %s | %s |", st.BatchRows, thousands(st.Batched), roundsText(st.BatchedRounds))
		var vs []string
		for _, t := range []string{"floor", "strata-sqlite", "pocketbase"} {
			if res := r.result("create", t); res != nil && st.OnePerTx > 0 {
				vs = append(vs, fmt.Sprintf("%s %s/s (%.2fx)", t, thousands(res.RPS), res.RPS/st.OnePerTx))
			}
		}
		if len(vs) > 0 {
			p("")
			p("create over HTTP against one row per transaction: %s.", strings.Join(vs, ", "))
		}
	}
	p("")
	p("## Scenarios")
	p("")
	p("| scenario | caller | what |")
	p("| --- | --- | --- |")
	for _, name := range c.Scenarios {
		s, _ := scenarioNamed(name)
		p("| %s | %s | %s |", s.name, s.caller, s.what)
	}
	p("")
	p("Callers: superuser, the target's superuser token (the floor's static token); anonymous, no Authorization "+
		"header; user, a member of the auth collection members, signed in before the scenarios, each connection "+
		"sending one member's token. posts has public rules for every operation and users a public view rule (\"\" on "+
		"Strata and PocketBase; the floor's -public), which superusers skip, so the superuser scenarios do the same "+
		"work as without them. member_posts holds the posts again, each written by one of %d members in turn, with "+
		"the list, view, create, update and delete rule `%s` and an index on (author, published, views); members has "+
		"the view rule `%s`, so that a member's posts expand to the member. The ceiling takes only view; a scenario "+
		"a target cannot express is not run there (see the notes).", c.Members, ownerRule, selfRule)
	var notes []string
	for _, t := range r.Targets {
		for _, sc := range slices.Sorted(maps.Keys(t.NotRun)) {
			notes = append(notes, fmt.Sprintf("%s %s: not run: %s", t.Name, sc, t.NotRun[sc]))
		}
	}
	for _, res := range r.Results {
		if res.Note != "" {
			notes = append(notes, fmt.Sprintf("%s %s: %s", res.Target, res.Scenario, res.Note))
		}
	}
	notes = append(notes, r.Failures...)
	if len(notes) > 0 {
		p("")
		p("## Errors and notes")
		p("")
		for _, n := range notes {
			p("- %s", strings.ReplaceAll(n, "\n", " "))
		}
	}
	return b.String()
}

// num writes a latency or time with two significant decimals below 10.
func num(v float64) string {
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// thousands writes a rate as a whole number with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// roundsText lists the rounds' rates.
func roundsText(rounds []float64) string {
	parts := make([]string, len(rounds))
	for i, v := range rounds {
		parts[i] = thousands(v)
	}
	return strings.Join(parts, ", ")
}
