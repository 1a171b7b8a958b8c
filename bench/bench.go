// Package bench measures Strata against a ceiling (bare net/http), a floor
// (net/http and SQLite with no framework) and PocketBase. Every target runs
// as its own process on a loopback port, gets the same data through its
// own API, and takes the same closed-loop load.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Config says what a run measures.
type Config struct {
	Short   bool
	Targets []string // names from targetNames
	// Baseline, when set, is another checkout of Strata: its build runs
	// as the target strata-baseline, on SQLite, beside strata-sqlite, so
	// a change is measured against the code before it in the same run.
	Baseline  string
	Scenarios []string      // names from scenarios
	Duration  time.Duration // one round
	Warmup    time.Duration // before the rounds of each scenario
	Rounds    int
	Records   int // posts
	Users     int
	Members   int           // members who sign in, for the user scenarios
	Conns     int           // connections of the closed loop
	Starts    int           // starts on an empty data directory, for start to ready
	Settle    time.Duration // idle time before RSS is read
	Seed      uint64
	Out       string    // the results directory; "" writes no files
	Profile   string    // where CPU profiles of Strata's scenarios go; "" takes none
	Storage   bool      // measure the storage ceilings (raw SQLite inserts)
	BuildDir  string    // where binaries are built; "" is bench/.build
	Command   string    // the command line, for the results
	Log       io.Writer // progress
}

// DefaultConfig is a full run, or with short the quick run CI uses. A full
// run has 42 scenario runs (11 scenarios on Strata's two targets, 10 on
// PocketBase, which has no cache, 9 on the floor, which has no users or
// cache, view on the ceiling); with rounds of 3 s each takes 16 s, and
// the run, loads and the storage ceilings (30 s) included, about 17
// minutes on 2 cores. Members hash their passwords on register and
// sign-in (tens of milliseconds each), so there are few of them: 32 own
// about 3,000 posts each, and in a short run 8 own 250.
func DefaultConfig(short bool) Config {
	c := Config{Targets: targetNames, Storage: true, Duration: 3 * time.Second, Warmup: time.Second, Rounds: 5,
		Records: 100_000, Users: 1000, Members: 32, Conns: 50, Starts: 5, Settle: time.Second, Seed: 1, Out: "results", Log: os.Stderr}
	for _, s := range scenarios {
		c.Scenarios = append(c.Scenarios, s.name)
	}
	if short {
		c.Short, c.Duration, c.Warmup, c.Rounds = true, time.Second, 200*time.Millisecond, 2
		c.Records, c.Users, c.Members, c.Conns, c.Starts, c.Settle = 2000, 50, 8, 8, 3, 200*time.Millisecond
	}
	return c
}

// TargetReport is what a run found about one target besides its scenarios.
type TargetReport struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Skipped says why the target did not run, when it did not.
	Skipped string `json:"skipped,omitempty"`
	// StartMS are the times from process start until the health endpoint
	// answered, each on an empty data directory.
	StartMS       []float64 `json:"start_to_ready_ms"`
	StartMedianMS float64   `json:"start_to_ready_median_ms"`
	LoadHow       string    `json:"load_how"`
	LoadSeconds   float64   `json:"load_seconds"`
	// MembersSeconds is the time to create the members, load member_posts
	// and sign the members in, when a user scenario ran.
	MembersSeconds float64 `json:"members_load_seconds,omitempty"`
	MembersHow     string  `json:"members_load_how,omitempty"`
	// NotRun names the scenarios asked for that the target cannot
	// express, each with why.
	NotRun map[string]string `json:"not_run,omitempty"`
	// RSSStartKiB is the RSS of each start, idle on its empty data
	// directory, a settle time after it was ready.
	RSSStartKiB       []float64 `json:"rss_idle_at_start_kib"`
	RSSStartMedianKiB int64     `json:"rss_idle_at_start_median_kib"`
	// RSS of the process, idle, after the load and after the scenarios.
	RSSLoadKiB int64 `json:"rss_after_load_kib"`
	RSSRunKiB  int64 `json:"rss_after_scenarios_kib"`
}

// Report is everything a run measured.
type Report struct {
	Date     string         `json:"date"`
	Host     string         `json:"host"`
	Machine  Machine        `json:"machine"`
	Go       string         `json:"go"`
	Config   ConfigReport   `json:"config"`
	Targets  []TargetReport `json:"targets"`
	Results  []Result       `json:"results"`
	Storage  *StorageReport `json:"storage,omitempty"`
	Failures []string       `json:"failures,omitempty"`
}

// ConfigReport is the part of the configuration that the results depend on.
type ConfigReport struct {
	Command   string   `json:"command"`
	Short     bool     `json:"short"`
	Posts     int      `json:"posts"`
	Users     int      `json:"users"`
	Members   int      `json:"members"`
	Conns     int      `json:"conns"`
	Rounds    int      `json:"rounds"`
	Duration  string   `json:"round_duration"`
	Warmup    string   `json:"warmup"`
	Starts    int      `json:"starts"`
	Scenarios []string `json:"scenarios"`
}

// Run builds the targets, runs every scenario on every target, writes the
// results into cfg.Out and returns them. The error lists what failed: a
// target that did not start or load, a scenario with errors.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := check(cfg); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	began := time.Now()
	root, err := findRoot()
	if err != nil {
		return nil, err
	}
	if cfg.BuildDir == "" {
		cfg.BuildDir = filepath.Join(root, "bench", ".build")
	}
	tmp, err := os.MkdirTemp("", "strata-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	rep := &Report{Date: began.Format("2006-01-02"), Machine: machine(), Go: goVersion(ctx),
		Config: ConfigReport{Command: cfg.Command, Short: cfg.Short, Posts: cfg.Records, Users: cfg.Users, Members: cfg.Members, Conns: cfg.Conns,
			Rounds: cfg.Rounds, Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(), Starts: cfg.Starts, Scenarios: cfg.Scenarios}}
	rep.Host = rep.Machine.Host

	var pg *postgres
	var pgErr error
	if slices.Contains(cfg.Targets, "strata-postgres") {
		logf("starting PostgreSQL for strata-postgres")
		if pg, pgErr = startPostgres(ctx); pgErr != nil {
			if !errors.Is(pgErr, errNoPostgres) {
				rep.Failures = append(rep.Failures, "strata-postgres: "+pgErr.Error())
			}
			logf("strata-postgres is skipped: %v", pgErr)
		} else {
			defer pg.stop(context.WithoutCancel(ctx))
		}
	}
	var ts []*target
	for _, name := range targetNames {
		if !slices.Contains(cfg.Targets, name) {
			continue
		}
		if name == "strata-postgres" && pg == nil {
			rep.Targets = append(rep.Targets, TargetReport{Name: name, Skipped: pgErr.Error()})
			continue
		}
		ts = append(ts, newTarget(name, pg))
		if name == "strata-sqlite" && cfg.Baseline != "" {
			t := strataTarget(baselineName)
			if t.src, err = filepath.Abs(cfg.Baseline); err != nil {
				return nil, err
			}
			ts = append(ts, t)
		}
	}
	if err := os.MkdirAll(cfg.BuildDir, 0o755); err != nil {
		return nil, err
	}
	if cfg.Profile != "" {
		if err := os.MkdirAll(cfg.Profile, 0o755); err != nil {
			return nil, err
		}
	}
	if err := buildTargets(ctx, root, cfg.BuildDir, ts, logf); err != nil {
		return nil, err
	}

	cpu := cpuMeter{ours: []int{os.Getpid()}}
	if pg != nil && pg.dir != "" {
		cpu.db = postmasterPID(filepath.Join(pg.dir, "data"))
		cpu.ours = append(cpu.ours, cpu.db)
	}
	if cfg.Storage {
		dir := filepath.Join(tmp, "storage")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		st, err := measureStorage(ctx, dir, cfg.Rounds, cfg.Duration)
		if err != nil {
			rep.Failures = append(rep.Failures, "storage ceilings: "+err.Error())
		} else {
			rep.Storage = st
			logf("storage ceilings: %.0f rows/s one row per transaction, %.0f rows/s %d rows per transaction",
				st.OnePerTx, st.Batched, st.BatchRows)
		}
	}
	ds := newDataset(cfg.Users, cfg.Records, cfg.Members, cfg.Seed)
	var lives []*live
	defer func() {
		for _, lv := range lives {
			lv.finish(context.WithoutCancel(ctx), cfg)
		}
	}()
	for _, t := range ts {
		if t.name == "strata-postgres" {
			t.version += ", " + pg.version
		}
		lives = append(lives, prepareTarget(ctx, cfg, t, ds, filepath.Join(tmp, t.name), cpu, logf))
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	runScenarios(ctx, cfg, lives, logf)
	for _, lv := range lives {
		lv.finish(ctx, cfg)
		rep.Targets = append(rep.Targets, lv.tr)
		rep.Results = append(rep.Results, lv.results...)
		rep.Failures = append(rep.Failures, lv.fails...)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}

	fmt.Fprint(os.Stdout, textTable(rep))
	if cfg.Out != "" {
		md, js, err := writeReport(rep, cfg.Out)
		if err != nil {
			return rep, err
		}
		logf("wrote %s and %s", md, js)
	}
	logf("the run took %s", time.Since(began).Round(time.Second))
	if len(rep.Failures) > 0 {
		return rep, errors.New("failed:\n  " + strings.Join(rep.Failures, "\n  "))
	}
	return rep, nil
}

// check refuses a configuration that cannot run.
func check(cfg Config) error {
	for _, name := range cfg.Targets {
		if !slices.Contains(targetNames, name) {
			return fmt.Errorf("unknown target %q (known: %s)", name, strings.Join(targetNames, ", "))
		}
	}
	for _, name := range cfg.Scenarios {
		if _, ok := scenarioNamed(name); !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
	}
	switch {
	case cfg.Rounds < 1, cfg.Duration <= 0, cfg.Conns < 1, cfg.Starts < 1:
		return errors.New("rounds, duration, conns and starts must be positive")
	case cfg.Records < 1, cfg.Users < 1, cfg.Members < 1:
		return errors.New("records, users and members must be positive")
	}
	return nil
}
