package jobs

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseQueues(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]int
		err  string
	}{
		{in: "", want: map[string]int{}},
		{in: "  ", want: map[string]int{}},
		{in: "default=4", want: map[string]int{"default": 4}},
		{in: "default=4, emails=2, reports=1", want: map[string]int{"default": 4, "emails": 2, "reports": 1}},
		{in: " emails = 2 ,reports.pdf=1000", want: map[string]int{"emails": 2, "reports.pdf": 1000}},
		{in: "default=0, reports=3", want: map[string]int{"default": 0, "reports": 3}},
		{in: "emails=2,", err: `entry 2 is empty; write name=workers entries separated by commas, as in "default=4, emails=2"`},
		{in: ",emails=2", err: `entry 1 is empty`},
		{in: "emails", err: `entry "emails" has no "=" between the queue and its workers, as in "emails=2"`},
		{in: "emails:2", err: `entry "emails:2" has no "="`},
		{in: "=2", err: `queue name "" is not 1 to 128 letters, digits and _.:- starting with a letter or digit`},
		{in: "e mails=2", err: `queue name "e mails" is not`},
		{in: "-x=2", err: `queue name "-x" is not`},
		{in: "emails=two", err: `queue emails has workers "two", which is not a whole number`},
		{in: "emails=", err: `queue emails has workers "", which is not a whole number`},
		{in: "emails=1.5", err: `queue emails has workers "1.5", which is not a whole number`},
		{in: "emails=-1", err: `queue emails has -1 workers, not a number from 0 to 1000`},
		{in: "emails=1001", err: `queue emails has 1001 workers, not a number from 0 to 1000`},
		{in: "emails=1, emails=2", err: `queue emails is named twice`},
	}
	for _, tt := range tests {
		got, err := ParseQueues(tt.in)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("ParseQueues(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tt.want) {
			t.Errorf("ParseQueues(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCron(t *testing.T) {
	tests := []struct {
		in   string
		want []CronEntry
		err  string
	}{
		{in: ""},
		{in: " ; \n "},
		{in: "nightly-report: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run", want: []CronEntry{
			{Name: "nightly-report", Spec: "0 3 * * *", Kind: "report.nightly"},
			{Name: "cleanup", Spec: "@every 1h", Kind: "cleanup.run"}}},
		{in: "\n  a:@daily   k\n\n b :  */15  9-17 * * mon-fri  k.x ;", want: []CronEntry{
			{Name: "a", Spec: "@daily", Kind: "k"},
			{Name: "b", Spec: "*/15 9-17 * * mon-fri", Kind: "k.x"}}},
		{in: "@daily report", err: `entry "@daily report" has no ":" after its name`},
		{in: "nightly 0 3 * * * report", err: `entry "nightly 0 3 * * * report" has no ":" after its name; write "name: spec kind"`},
		{in: ": @daily report", err: `schedule name "" is not`},
		{in: "nightly: report", err: `schedule nightly needs a spec and a job kind after its name, as in "nightly: @daily report.daily"`},
		{in: "nightly:", err: `schedule nightly needs a spec and a job kind`},
		{in: "nightly: 0 3 * * *", err: `schedule nightly: the job kind is missing after the spec "0 3 * * *"`},
		{in: "cleanup: @every 1h", err: `schedule cleanup: the job kind is missing after the spec "@every 1h"`},
		{in: "nightly: @daily *", err: `schedule nightly: job kind "*" is not`},
		{in: "nightly: 0 3 * * report", err: `schedule nightly: cron "0 3 * *": want 5 fields`},
		{in: "nightly: 0 25 * * * report", err: `schedule nightly: cron "0 25 * * *": `},
		{in: "nightly: @every 10ms report", err: `schedule nightly: cron "@every 10ms": @every needs at least 1s`},
		{in: "nightly: @sometimes report", err: `schedule nightly: cron "@sometimes": unknown macro`},
		{in: "a: @daily x; a: @hourly y", err: `schedule a is named twice`},
	}
	for _, tt := range tests {
		got, err := ParseCron(tt.in)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("ParseCron(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseCron(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseQueues: the parser never panics, and what it accepts has valid
// names and counts and parses again, written back, to the same map.
func FuzzParseQueues(f *testing.F) {
	for _, s := range []string{"", "default=4, emails=2, reports=1", "a=0", "a=1,a=2", "x=", "=,=", "a = 1000 ,b=-0", "é=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseQueues(s)
		if err != nil {
			if m != nil {
				t.Fatalf("ParseQueues(%q) returned %v with error %v", s, m, err)
			}
			return
		}
		var parts []string
		for name, n := range m {
			if !validName(name) || n < 0 || n > MaxQueueWorkers {
				t.Fatalf("ParseQueues(%q) accepted %s=%d", s, name, n)
			}
			parts = append(parts, name+"="+strconv.Itoa(n))
		}
		again, err := ParseQueues(strings.Join(parts, ","))
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("ParseQueues(%q) = %v, but written back it parses to %v, %v", s, m, again, err)
		}
	})
}

// FuzzParseCron: the parser never panics, and every entry it accepts has
// a valid name and kind and a spec that ParseSpec takes.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"", "nightly-report: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run",
		"a: @daily k\nb: */5 * * * * k", "a:", ":", ";;", "a: @every 1s k; a: @every 2s k", "x: 0 0 31 2 * k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := ParseCron(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !validName(e.Name) || !validName(e.Kind) || seen[e.Name] || strings.Contains(e.Name, ":") {
				t.Fatalf("ParseCron(%q) accepted %+v", s, e)
			}
			seen[e.Name] = true
			if _, err := ParseSpec(e.Spec); err != nil {
				t.Fatalf("ParseCron(%q) accepted spec %q: %v", s, e.Spec, err)
			}
		}
	})
}
