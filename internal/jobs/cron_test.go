package jobs

import (
	"testing"
	"time"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSpecNext(t *testing.T) {
	for _, c := range []struct{ spec, from, want string }{
		{"* * * * *", "2025-03-01T10:00:30Z", "2025-03-01T10:01:00Z"},
		{"*/15 * * * *", "2025-03-01T10:01:00Z", "2025-03-01T10:15:00Z"},
		{"0 9-17/4 * * mon-fri", "2025-03-01T10:00:00Z", "2025-03-03T09:00:00Z"}, // Saturday to Monday
		{"30 2 * * *", "2025-03-01T02:30:00Z", "2025-03-02T02:30:00Z"},
		{"0 0 29 feb *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z"},
		{"0 0 1,15 * *", "2025-01-02T00:00:00Z", "2025-01-15T00:00:00Z"},
		{"0 0 13 * fri", "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z"}, // day-of-month OR day-of-week
		{"0 0 * * 7", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z"},    // 7 is Sunday
		{"5/20 * * * *", "2025-01-01T00:06:00Z", "2025-01-01T00:25:00Z"},
		{"0 12 * DEC *", "2025-01-01T00:00:00Z", "2025-12-01T12:00:00Z"},
		{"@hourly", "2025-01-01T00:59:59Z", "2025-01-01T01:00:00Z"},
		{"@daily", "2025-12-31T23:00:00Z", "2026-01-01T00:00:00Z"},
		{"@weekly", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z"},
		{"@monthly", "2025-01-31T00:00:00Z", "2025-02-01T00:00:00Z"},
		{"@yearly", "2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"@every 5m", "2025-01-01T00:07:00Z", "2025-01-01T00:10:00Z"}, // aligned to the epoch
		{"@every 5m", "2025-01-01T00:10:00Z", "2025-01-01T00:15:00Z"},
		{"@every 90s", "2025-01-01T00:00:00Z", "2025-01-01T00:01:30Z"},
	} {
		sp, err := ParseSpec(c.spec)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", c.spec, err)
			continue
		}
		if got := sp.Next(mustTime(t, c.from)); !got.Equal(mustTime(t, c.want)) {
			t.Errorf("%q after %s = %s, want %s", c.spec, c.from, got.Format(time.RFC3339), c.want)
		}
	}
	sp, _ := ParseSpec("0 0 30 feb *")
	if got := sp.Next(time.Now()); !got.IsZero() {
		t.Errorf("February 30th fires at %v", got)
	}
}

func TestParseSpecErrors(t *testing.T) {
	for _, s := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * foo *", "@often", "@every 10ms", "@every soon", "1,,2 * * * *", "-1 * * * *",
	} {
		if _, err := ParseSpec(s); err == nil {
			t.Errorf("ParseSpec(%q) accepted", s)
		}
	}
}

// FuzzParseSpec: the parser never panics, and a parsed schedule's next
// tick is after the start, fires again at its own tick, and is found again
// from just before it.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/7 3-5 1,15 jan-mar sun", "@every 1h30m", "@weekly", "0 0 31 2 *", "5/20 */3 ? * 1-7"} {
		f.Add(s, int64(1735689600))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		sp, err := ParseSpec(s)
		if err != nil {
			return
		}
		from := time.Unix(unix%(1<<34), 0).UTC() // within a few hundred years of 1970
		next := sp.Next(from)
		if next.IsZero() {
			return
		}
		if !next.After(from) {
			t.Fatalf("%q: next %v is not after %v", s, next, from)
		}
		if again := sp.Next(next.Add(-time.Nanosecond)); !again.Equal(next) {
			t.Fatalf("%q: from just before %v the next tick is %v", s, next, again)
		}
		if sp.every == 0 && (next.Second() != 0 || !has(sp.minute, next.Minute()) || !has(sp.hour, next.Hour()) || !has(sp.month, int(next.Month())) || !sp.dayMatches(next)) {
			t.Fatalf("%q: next %v does not match the schedule", s, next)
		}
	})
}
