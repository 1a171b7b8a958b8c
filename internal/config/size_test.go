package config

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  string
	}{
		{in: "64MiB", want: 64 << 20},
		{in: "64 mib", want: 64 << 20},
		{in: "1.5GB", want: 1_500_000_000},
		{in: "0.5KiB", want: 512},
		{in: "1048576", want: 1 << 20},
		{in: "10B", want: 10},
		{in: " 2TiB ", want: 2 << 40},
		{in: "", err: "does not start with a number"},
		{in: "MiB", err: "does not start with a number"},
		{in: "-1MiB", err: "does not start with a number"},
		{in: "64MB2", err: `has unit "MB2"`},
		{in: "64 megabytes", err: `has unit "megabytes"`},
		{in: "1..5MiB", err: "not like 64 or 1.5"},
		{in: ".5MiB", err: "not like 64 or 1.5"},
		{in: "5.MiB", err: "not like 64 or 1.5"},
		{in: "18446744073709551616", err: "too large"},
		{in: "17179869184GiB", err: "too large"},
		{in: "1e3MiB", err: `has unit "e3MiB"`},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseSize: ParseSize never panics, and a size it accepts written
// back in bytes parses to the same number.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5 GB", "0", "1048576", "9.99TiB", "18446744073709551615", "1.TiB", "kb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		again, err := ParseSize(strings.TrimSpace(formatUint(n)))
		if err != nil || again != n {
			t.Fatalf("ParseSize(%q) = %d, but %d parses to %d, %v", s, n, n, again, err)
		}
	})
}

func formatUint(n uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
