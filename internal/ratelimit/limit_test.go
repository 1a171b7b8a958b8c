package ratelimit

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in   string
		want Limit
	}{
		{"100/min", Limit{100, time.Minute, 100}},
		{"100/min burst 20", Limit{100, time.Minute, 20}},
		{"10/s", Limit{10, time.Second, 10}},
		{"1000/h", Limit{1000, time.Hour, 1000}},
		{"5/10s", Limit{5, 10 * time.Second, 5}},
		{"5/10s burst 1", Limit{5, 10 * time.Second, 1}},
		{"1/d", Limit{1, 24 * time.Hour, 1}},
		{"10/100ms", Limit{10, 100 * time.Millisecond, 10}},
		{"1/500us", Limit{1, 500 * time.Microsecond, 1}},
		{"3/second", Limit{3, time.Second, 3}},
		{"3/5minutes", Limit{3, 5 * time.Minute, 3}},
		{"3/m", Limit{3, time.Minute, 3}},
		{"7/hour BURST 2", Limit{7, time.Hour, 2}},
		{"  60 / MIN   burst\t5 ", Limit{60, time.Minute, 5}},
		{"1/366d", Limit{1, 366 * 24 * time.Hour, 1}},
		{"1000000/s", Limit{1_000_000, time.Second, 1_000_000}},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseLimitErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `missing "/" between rate and period`},
		{"100", `missing "/" between rate and period`},
		{"100/", `missing period after "/"`},
		{"/min", "rate: missing number"},
		{"0/min", "rate: must be at least 1"},
		{"-1/min", `rate: "-1" is not a whole number`},
		{"1.5/min", `rate: "1.5" is not a whole number`},
		{"abc/min", `rate: "abc" is not a whole number`},
		{"99999999999/s", "rate: 99999999999 is too large"},
		{"100/mni", `period: unknown unit "mni" (want us, ms, s, min, h or d)`},
		{"100/10", "period: missing unit after 10"},
		{"100/0s", "period: must be at least 1"},
		{"100/1.5s", `period: unknown unit ".5s"`},
		{"100/min burst", `missing count after "burst"`},
		{"100/min burst 0", "burst: must be at least 1"},
		{"100/min burst x", `burst: "x" is not a whole number`},
		{"100/min burst 5 extra", `unexpected "extra" after the burst`},
		{"100/min per-ip", `unexpected "per-ip" after the period, want "burst N"`},
		{"100/min/s", `period: unknown unit "min/s"`},
		{"1/400d", "period: 400d exceeds 8784h0m0s"},
		{"2000000000/s", "rate 2000000000 exceeds 1000000000"},
		{"10/us", "10 per 1µs is more than one per microsecond"},
		{"1/366d burst 1000000000", "burst 1000000000 takes longer than"},
	}
	for _, tt := range tests {
		_, err := ParseLimit(tt.in)
		if err == nil {
			t.Errorf("ParseLimit(%q): no error, want %q", tt.in, tt.want)
			continue
		}
		if !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("ParseLimit(%q) error %v does not wrap ErrInvalidLimit", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLimit(%q) error = %q, want it to contain %q", tt.in, err, tt.want)
		}
		if !strings.Contains(err.Error(), `parse "`+tt.in+`"`) {
			t.Errorf("ParseLimit(%q) error = %q, want it to quote the input", tt.in, err)
		}
	}
}

func TestLimitString(t *testing.T) {
	tests := []struct {
		l    Limit
		want string
	}{
		{Limit{100, time.Minute, 100}, "100/min"},
		{Limit{100, time.Minute, 0}, "100/min"},
		{Limit{100, time.Minute, 20}, "100/min burst 20"},
		{Limit{5, 10 * time.Second, 5}, "5/10s"},
		{Limit{1, 90 * time.Second, 1}, "1/90s"},
		{Limit{1, 1500 * time.Microsecond, 1}, "1/1500us"},
		{Limit{1, 48 * time.Hour, 1}, "1/2d"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.l, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Limit{
		{},
		{Rate: 1},
		{Rate: 1, Period: -time.Second},
		{Rate: 1, Period: time.Second, Burst: -1},
		{Rate: 1, Period: 1500 * time.Nanosecond},
		{Rate: 3, Period: 2 * time.Microsecond},
		{Rate: MaxRate + 1, Period: time.Hour},
		{Rate: 1, Period: time.Second, Burst: MaxBurst + 1},
	}
	for _, l := range bad {
		if err := l.Validate(); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidLimit", l, err)
		}
	}
	if err := (Limit{Rate: 3, Period: time.Second}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestInterval(t *testing.T) {
	for _, tt := range []struct {
		l    Limit
		want time.Duration
	}{
		{Limit{Rate: 100, Period: time.Minute}, 600 * time.Millisecond},
		{Limit{Rate: 3, Period: time.Second}, 333333 * time.Microsecond},
		{Limit{Rate: 1, Period: time.Microsecond}, time.Microsecond},
	} {
		if got := tt.l.Interval(); got != tt.want {
			t.Errorf("%+v.Interval() = %v, want %v", tt.l, got, tt.want)
		}
	}
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{
		"100/min", "100/min burst 20", "10/s", "1000/h", "5/10s burst 1", "1/500us",
		" 7 / HOUR burst 2", "0/s", "1/0s", "99999999999/d", "1/1/1", "1/s burst", "10/µs",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidLimit) {
				t.Fatalf("ParseLimit(%q) error %v does not wrap ErrInvalidLimit", s, err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimit(%q) = %+v, which Validate rejects: %v", s, l, err)
		}
		if l.Burst == 0 {
			t.Fatalf("ParseLimit(%q) left Burst zero", s)
		}
		again, err := ParseLimit(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseLimit(%q) = %+v; its String %q parses to %+v, %v", s, l, l.String(), again, err)
		}
	})
}
