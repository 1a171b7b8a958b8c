package jobs

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Spec is a parsed schedule: a standard five-field cron expression
// (minute hour day-of-month month day-of-week), one of the macros
// @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, or
// "@every <duration>". Times are UTC.
//
// Fields take *, ?, numbers, ranges (1-5), lists (1,3,5) and steps (*/15,
// 0-30/10, 5/10); months and weekdays also take names (jan, mon); weekday
// 7 is Sunday like 0. As in Vixie cron, when both day-of-month and
// day-of-week are restricted, a day matching either runs.
//
// "@every d" fires at the multiples of d since the Unix epoch, so every
// node computes the same ticks whenever it started.
type Spec struct {
	minute, hour, dom, month, dow uint64
	domAny, dowAny                bool
	every                         time.Duration
}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	fMinute = field{name: "minute", min: 0, max: 59}
	fHour   = field{name: "hour", min: 0, max: 23}
	fDom    = field{name: "day of month", min: 1, max: 31}
	fMonth  = field{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	fDow = field{name: "day of week", min: 0, max: 7, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseSpec parses a schedule; see Spec.
func ParseSpec(s string) (*Spec, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("cron %q: %w", s, err)
		}
		if d < time.Second {
			return nil, fmt.Errorf("cron %q: @every needs at least 1s", s)
		}
		return &Spec{every: d}, nil
	}
	if m, ok := macros[strings.ToLower(s)]; ok {
		s = m
	} else if strings.HasPrefix(s, "@") {
		return nil, fmt.Errorf("cron %q: unknown macro", s)
	}
	parts := strings.Fields(s)
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", s, len(parts))
	}
	sp := &Spec{}
	var err error
	if sp.minute, _, err = parseField(parts[0], fMinute); err != nil {
		return nil, fmt.Errorf("cron %q: %w", s, err)
	}
	if sp.hour, _, err = parseField(parts[1], fHour); err != nil {
		return nil, fmt.Errorf("cron %q: %w", s, err)
	}
	if sp.dom, sp.domAny, err = parseField(parts[2], fDom); err != nil {
		return nil, fmt.Errorf("cron %q: %w", s, err)
	}
	if sp.month, _, err = parseField(parts[3], fMonth); err != nil {
		return nil, fmt.Errorf("cron %q: %w", s, err)
	}
	if sp.dow, sp.dowAny, err = parseField(parts[4], fDow); err != nil {
		return nil, fmt.Errorf("cron %q: %w", s, err)
	}
	if sp.dow&(1<<7) != 0 { // 7 is Sunday
		sp.dow = sp.dow&^(1<<7) | 1
	}
	return sp, nil
}

// parseField returns the bit set of a field and whether it was * or ?.
func parseField(s string, f field) (uint64, bool, error) {
	if s == "*" || s == "?" {
		return bitRange(f.min, f.max, 1), true, nil
	}
	var set uint64
	for part := range strings.SplitSeq(s, ",") {
		expr, stepText, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 || n > f.max {
				return 0, false, fmt.Errorf("%s: bad step %q", f.name, stepText)
			}
			step = n
		}
		var lo, hi int
		switch {
		case expr == "*" || expr == "?":
			lo, hi = f.min, f.max
		default:
			loText, hiText, isRange := strings.Cut(expr, "-")
			var err error
			if lo, err = f.value(loText); err != nil {
				return 0, false, err
			}
			hi = lo
			if isRange {
				if hi, err = f.value(hiText); err != nil {
					return 0, false, err
				}
			} else if hasStep {
				hi = f.max // 5/10 means 5-max/10
			}
			if lo > hi {
				return 0, false, fmt.Errorf("%s: range %q runs backwards", f.name, expr)
			}
		}
		set |= bitRange(lo, hi, step)
	}
	return set, false, nil
}

func (f field) value(s string) (int, error) {
	if n, ok := f.names[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", f.name, s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%s: %d is outside %d-%d", f.name, n, f.min, f.max)
	}
	return n, nil
}

func bitRange(lo, hi, step int) uint64 {
	var b uint64
	for i := lo; i <= hi; i += step {
		b |= 1 << uint(i)
	}
	return b
}

func has(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }

// Next returns the first time after t the schedule fires, or the zero time
// when it never does within five years (a February 30th).
func (s *Spec) Next(t time.Time) time.Time {
	t = t.UTC()
	if s.every > 0 {
		// The multiple of every after t, counted from the epoch.
		d := s.every
		n := t.UnixNano()
		next := n - n%int64(d) + int64(d)
		if n < 0 && n%int64(d) != 0 { // before 1970: % rounds toward zero
			next -= int64(d)
		}
		return time.Unix(0, next).UTC()
	}
	// Start at the next whole minute.
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.Year() + 5
	for t.Year() <= limit {
		if !has(s.month, int(t.Month())) {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !has(s.hour, t.Hour()) {
			t = t.Truncate(time.Hour).Add(time.Hour)
			continue
		}
		if !has(s.minute, t.Minute()) {
			// Jump to the next set minute of this hour, if any.
			rest := s.minute >> uint(t.Minute())
			if rest == 0 {
				t = t.Truncate(time.Hour).Add(time.Hour)
				continue
			}
			t = t.Add(time.Duration(bits.TrailingZeros64(rest)) * time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

func (s *Spec) dayMatches(t time.Time) bool {
	dom := has(s.dom, t.Day())
	dow := has(s.dow, int(t.Weekday()))
	if s.domAny || s.dowAny {
		return dom && dow
	}
	return dom || dow
}
