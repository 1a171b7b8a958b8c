package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestShortRun runs the short benchmark end to end: every target is built,
// started, loaded and measured, and no scenario may answer an error. It
// takes about a minute and a half, so it runs only when asked.
func TestShortRun(t *testing.T) {
	if os.Getenv("STRATA_BENCH_SHORT") != "1" {
		t.Skip("set STRATA_BENCH_SHORT=1 to run the short benchmark end to end")
	}
	cfg := DefaultConfig(true)
	cfg.Out, cfg.Profile = t.TempDir(), t.TempDir()
	cfg.Command = "go test -run TestShortRun (STRATA_BENCH_SHORT=1)"
	cfg.Log = logWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Targets {
		if tr.Skipped != "" {
			t.Logf("%s skipped: %s", tr.Name, tr.Skipped)
			continue
		}
		for _, sc := range cfg.Scenarios {
			if tr.Name == "ceiling" && sc != "view" {
				continue
			}
			if why, ok := tr.NotRun[sc]; ok {
				t.Logf("%s %s not run: %s", tr.Name, sc, why)
				continue
			}
			r := rep.result(sc, tr.Name)
			if r == nil || r.RPS <= 0 || r.Requests == 0 || r.CPUPerRequest <= 0 {
				t.Errorf("%s %s: no measurement: %+v", tr.Name, sc, r)
			}
			if strings.HasPrefix(tr.Name, "strata-") {
				if fi, err := os.Stat(filepath.Join(cfg.Profile, tr.Name+"-"+sc+".1.pprof")); err != nil || fi.Size() == 0 {
					t.Errorf("%s %s: no CPU profile: %v", tr.Name, sc, err)
				}
			}
		}
		if tr.StartMedianMS <= 0 || tr.RSSLoadKiB <= 0 || tr.RSSStartMedianKiB <= 0 {
			t.Errorf("%s: start to ready %v ms, RSS at start %d KiB, after the load %d KiB", tr.Name, tr.StartMedianMS,
				tr.RSSStartMedianKiB, tr.RSSLoadKiB)
		}
	}
	if st := rep.Storage; st == nil || st.OnePerTx <= 0 || st.Batched <= st.OnePerTx || st.Synchronous != "NORMAL" || st.JournalMode != "wal" {
		t.Errorf("storage ceilings: %+v", st)
	}
	md, err := filepath.Glob(filepath.Join(cfg.Out, "*-short.md"))
	if err != nil || len(md) != 1 {
		t.Fatalf("want one results file, got %v (%v)", md, err)
	}
	b, _ := os.ReadFile(md[0])
	for _, want := range []string{"| scenario | caller |", "| view | superuser |", "| list-owner | user |", "| view-owner | user |", "| create-owner | user |", "| delete-owner | user |", "| mixed-public | anonymous |", "| expand-public | anonymous |", "start to ready", "strata-sqlite / floor", "## Storage ceilings"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %q", md[0], want)
		}
	}
}

func TestDatasetIsTheSameEveryTime(t *testing.T) {
	a, b := newDataset(10, 100, 4, 1), newDataset(10, 100, 4, 1)
	if !slices.Equal(a.posts, b.posts) || !slices.Equal(a.users, b.users) || !slices.Equal(a.members, b.members) {
		t.Fatal("the same seed made different data")
	}
	if c := newDataset(10, 100, 7, 1); !slices.Equal(a.posts, c.posts) || !slices.Equal(a.users, c.users) {
		t.Fatal("the number of members changed the users or posts")
	}
	matching := 0
	for _, p := range newDataset(50, 10_000, 8, 1).posts {
		if p.Published && p.Views >= 500 {
			matching++
		}
	}
	if matching < 2000 || matching > 3000 {
		t.Errorf("%d of 10000 posts match the list filter, want about a quarter", matching)
	}
}

// TestMembersShareThePosts checks that each member owns an equal share of
// member_posts and, in a short run and a full one, enough posts matching
// the list filter to fill list-owner's 50.
func TestMembersShareThePosts(t *testing.T) {
	for _, short := range []bool{true, false} {
		cfg := DefaultConfig(short)
		d := newDataset(cfg.Users, cfg.Records, cfg.Members, cfg.Seed)
		ids := make([]string, cfg.Members)
		for i := range ids {
			ids[i] = strconv.Itoa(i)
		}
		owned := map[string]int{}
		for _, b := range d.memberPostBodies(ids) {
			var p struct{ Author string }
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			owned[p.Author]++
		}
		for i, id := range ids {
			if n := owned[id]; n < cfg.Records/cfg.Members || n > cfg.Records/cfg.Members+1 {
				t.Errorf("short %v: member %d owns %d posts of %d", short, i, n, cfg.Records)
			}
			if n := d.ownerMatches(i); n < 50 {
				t.Errorf("short %v: member %d has %d posts matching the list filter, want 50 or more", short, i, n)
			}
		}
	}
}

// TestScenarioCallers checks that every target can tell whether it runs
// each scenario's caller, and that the scenarios' names are unique.
func TestScenarioCallers(t *testing.T) {
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Errorf("scenario %s twice", sc.name)
		}
		seen[sc.name] = true
	}
	for _, name := range targetNames {
		tg := newTarget(name, nil)
		if _, ok := tg.cannot[asUser]; !ok && !tg.viewOnly && (tg.members == nil || tg.signIn == nil) {
			t.Errorf("%s runs the user scenarios but has no members step or no sign-in", name)
		}
	}
}

func TestStatistics(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	if p := percentile(lat, 0.50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(lat, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if s := thousands(1234567.4); s != "1,234,567" {
		t.Errorf("thousands = %q", s)
	}
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBuildMatchesDockerfile: the benchmark measures Strata built as its
// image ships it.
func TestBuildMatchesDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-tags " + strataTags, `-ldflags "-s -w`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Dockerfile's build lacks %q, which the benchmark's build of Strata has", want)
		}
	}
}
