package schema

import (
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 6, 1, 0, 30, 0, 0, time.FixedZone("x", 5*3600+1800)),
		{},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := FormatTime(tm), tm.UTC().Format(TimeLayout); got != want {
			t.Errorf("FormatTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func TestParseStoredTime(t *testing.T) {
	for _, s := range []string{
		"2026-01-02T03:04:05.006Z", "0000-01-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z",
		"2023-02-29T12:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-01-01T24:00:00.000Z", "2026-01-01T00:60:00.000Z",
		"2026-01-01T00:00:60.000Z", "2026-01-0aT00:00:00.000Z", "2026-01-01 00:00:00.000Z", "", "2026-01-01T00:00:00Z",
		"+026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.-01Z",
	} {
		got, err := ParseStoredTime(s)
		want, werr := time.Parse(TimeLayout, s)
		if (err != nil) != (werr != nil) || !got.Equal(want) || (err == nil && got.Location() != time.UTC) {
			t.Errorf("ParseStoredTime(%q) = %v, %v; time.Parse: %v, %v", s, got, err, want, werr)
		}
	}
}

// FuzzStoredTime holds the hand-written parser and formatter to the time
// package's.
func FuzzStoredTime(f *testing.F) {
	f.Add("2026-01-02T03:04:05.006Z")
	f.Add("2024-02-29T23:59:59.999Z")
	f.Add("9999-12-31T23:59:59.999Z")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseStoredTime(s)
		want, werr := time.Parse(TimeLayout, s)
		if (err != nil) != (werr != nil) {
			t.Fatalf("ParseStoredTime(%q): error %v, time.Parse: %v", s, err, werr)
		}
		if err != nil {
			return
		}
		if !got.Equal(want) {
			t.Fatalf("ParseStoredTime(%q) = %v, time.Parse: %v", s, got, want)
		}
		if f, w := FormatTime(got), want.UTC().Format(TimeLayout); f != w {
			t.Fatalf("FormatTime(%v) = %q, want %q", got, f, w)
		}
	})
}
