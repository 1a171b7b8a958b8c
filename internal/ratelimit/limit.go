package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is a rate: Rate requests per Period, with bursts of up to Burst
// requests at once. Requests are spread evenly: after a burst, one more
// request is allowed every Period/Rate (the emission interval).
type Limit struct {
	Rate   int
	Period time.Duration
	// Burst is how many requests may be made at once by an idle key. Zero
	// means Rate.
	Burst int
}

// Bounds on a Limit, so that the arithmetic of every adapter stays exact
// (in integers, and within 2^53 microseconds in Redis's Lua).
const (
	// MaxRate and MaxBurst bound Rate and Burst.
	MaxRate  = 1_000_000_000
	MaxBurst = 1_000_000_000
	// Resolution is the time resolution of limits: periods are whole
	// multiples of it, and the emission interval is at least it.
	Resolution = time.Microsecond
	// MaxPeriod bounds Period.
	MaxPeriod = 366 * 24 * time.Hour
	// maxTolerance bounds Burst × emission interval (about 35 years).
	maxTolerance = time.Duration(1<<50) * time.Microsecond
)

// ErrInvalidLimit is wrapped by the errors of Validate and ParseLimit.
var ErrInvalidLimit = errors.New("invalid rate limit")

// burst returns the effective burst.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Interval returns the emission interval, Period/Rate, truncated to the
// Resolution.
func (l Limit) Interval() time.Duration {
	if l.Rate <= 0 {
		return 0
	}
	return (l.Period / time.Duration(l.Rate)).Truncate(Resolution)
}

// Validate reports whether l can be enforced.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("%w: rate %d is not positive", ErrInvalidLimit, l.Rate)
	case l.Rate > MaxRate:
		return fmt.Errorf("%w: rate %d exceeds %d", ErrInvalidLimit, l.Rate, MaxRate)
	case l.Period <= 0:
		return fmt.Errorf("%w: period %v is not positive", ErrInvalidLimit, l.Period)
	case l.Period > MaxPeriod:
		return fmt.Errorf("%w: period %v exceeds %v", ErrInvalidLimit, l.Period, MaxPeriod)
	case l.Period%Resolution != 0:
		return fmt.Errorf("%w: period %v is not a whole number of microseconds", ErrInvalidLimit, l.Period)
	case l.Burst < 0:
		return fmt.Errorf("%w: burst %d is negative", ErrInvalidLimit, l.Burst)
	case l.Burst > MaxBurst:
		return fmt.Errorf("%w: burst %d exceeds %d", ErrInvalidLimit, l.Burst, MaxBurst)
	}
	t := l.Interval()
	if t < Resolution {
		return fmt.Errorf("%w: %d per %v is more than one per microsecond", ErrInvalidLimit, l.Rate, l.Period)
	}
	if time.Duration(l.burst()) > maxTolerance/t {
		return fmt.Errorf("%w: burst %d takes longer than %v to refill", ErrInvalidLimit, l.burst(), maxTolerance)
	}
	return nil
}

// String formats l in the grammar of ParseLimit, so that
// ParseLimit(l.String()) == l for a valid l whose Burst is set (ParseLimit
// always sets it).
func (l Limit) String() string {
	s := strconv.Itoa(l.Rate) + "/" + formatPeriod(l.Period)
	if l.Burst != 0 && l.Burst != l.Rate {
		s += " burst " + strconv.Itoa(l.Burst)
	}
	return s
}

// units are the period units of the grammar, longest first for
// formatting; the first name of each is the canonical one.
var units = []struct {
	names []string
	d     time.Duration
}{
	{[]string{"d", "day", "days"}, 24 * time.Hour},
	{[]string{"h", "hr", "hour", "hours"}, time.Hour},
	{[]string{"min", "m", "minute", "minutes"}, time.Minute},
	{[]string{"s", "sec", "second", "seconds"}, time.Second},
	{[]string{"ms", "millisecond", "milliseconds"}, time.Millisecond},
	{[]string{"us", "µs", "microsecond", "microseconds"}, time.Microsecond},
}

func formatPeriod(d time.Duration) string {
	if d > 0 {
		for _, u := range units {
			if d%u.d == 0 {
				if d == u.d {
					return u.names[0]
				}
				return strconv.FormatInt(int64(d/u.d), 10) + u.names[0]
			}
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns" // not valid; shown as is
}

// ParseLimit parses a limit written as
//
//	limit  = rate "/" period [ "burst" count ]
//	rate   = count
//	period = [ count ] unit
//	unit   = "us" | "ms" | "s" | "sec" | "second" | "m" | "min" | "minute"
//	       | "h" | "hr" | "hour" | "d" | "day"   (and plurals: "seconds" ...)
//	count  = 1*DIGIT, without a sign, not zero
//
// Words are case-insensitive and separated by blanks, which are also
// allowed around "/". Examples: "100/min", "10/s", "1000/h",
// "5/10s burst 1", "100/min burst 20". Without "burst", Burst is set to
// the rate. The result is validated (see Limit.Validate).
func ParseLimit(s string) (Limit, error) {
	fail := func(format string, args ...any) (Limit, error) {
		return Limit{}, fmt.Errorf("%w: parse %q: %s", ErrInvalidLimit, s, fmt.Sprintf(format, args...))
	}
	rateText, rest, ok := strings.Cut(s, "/")
	if !ok {
		return fail(`missing "/" between rate and period, as in "100/min"`)
	}
	rate, err := parseCount(strings.TrimSpace(rateText))
	if err != nil {
		return fail("rate: %v", err)
	}

	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return fail(`missing period after "/", as in "100/min"`)
	}
	period, err := parsePeriod(fields[0])
	if err != nil {
		return fail("period: %v", err)
	}

	l := Limit{Rate: rate, Period: period, Burst: rate}
	switch {
	case len(fields) == 1:
	case !strings.EqualFold(fields[1], "burst"):
		return fail(`unexpected %q after the period, want "burst N"`, fields[1])
	case len(fields) == 2:
		return fail(`missing count after "burst"`)
	case len(fields) > 3:
		return fail("unexpected %q after the burst", fields[3])
	default:
		b, err := parseCount(fields[2])
		if err != nil {
			return fail("burst: %v", err)
		}
		l.Burst = b
	}
	if err := l.Validate(); err != nil {
		return fail("%v", strings.TrimPrefix(err.Error(), ErrInvalidLimit.Error()+": "))
	}
	return l, nil
}

// parseCount parses a positive decimal integer of at most 10 digits.
func parseCount(s string) (int, error) {
	if s == "" {
		return 0, errors.New("missing number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a whole number", s)
		}
	}
	if len(s) > 10 {
		return 0, fmt.Errorf("%s is too large", s)
	}
	n, _ := strconv.Atoi(s) // ten digits fit in an int on 64-bit platforms
	if n == 0 {
		return 0, errors.New("must be at least 1")
	}
	return n, nil
}

// parsePeriod parses "[count]unit".
func parsePeriod(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	count := 1
	if i > 0 {
		n, err := parseCount(s[:i])
		if err != nil {
			return 0, err
		}
		count = n
	}
	name := strings.ToLower(s[i:])
	if name == "" {
		return 0, fmt.Errorf("missing unit after %s (want us, ms, s, min, h or d)", s)
	}
	for _, u := range units {
		for _, n := range u.names {
			if name != n {
				continue
			}
			if time.Duration(count) > MaxPeriod/u.d {
				return 0, fmt.Errorf("%s exceeds %v", s, MaxPeriod)
			}
			return time.Duration(count) * u.d, nil
		}
	}
	return 0, fmt.Errorf("unknown unit %q (want us, ms, s, min, h or d)", s[i:])
}
