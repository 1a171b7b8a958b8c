package ratelimit

import (
	"net/http"
	"testing"
	"time"
)

func TestFormatPolicy(t *testing.T) {
	tests := []struct {
		name string
		l    Limit
		want string
	}{
		{"default", Limit{Rate: 100, Period: time.Minute, Burst: 20}, `"default";q=100;w=60`},
		{"per-ip", Limit{Rate: 10, Period: time.Second}, `"per-ip";q=10;w=1`},
		{"fast", Limit{Rate: 10, Period: 100 * time.Millisecond}, `"fast";q=100;w=1`},
		{"odd", Limit{Rate: 5, Period: 1500 * time.Millisecond}, `"odd";q=6;w=2`},
		{"slow", Limit{Rate: 1, Period: 24 * time.Hour}, `"slow";q=1;w=86400`},
		{`say "hi"\`, Limit{Rate: 1, Period: time.Second}, `"say \"hi\"\\";q=1;w=1`},
		{"tab\tand é", Limit{Rate: 1, Period: time.Second}, `"tab?and ??";q=1;w=1`},
	}
	for _, tt := range tests {
		if got := FormatPolicy(tt.name, tt.l); got != tt.want {
			t.Errorf("FormatPolicy(%q, %v) = %s, want %s", tt.name, tt.l, got, tt.want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	l := Limit{Rate: 100, Period: time.Minute, Burst: 100}

	h := http.Header{}
	SetHeaders(h, "default", Result{Allowed: true, Remaining: 57, ResetAfter: 11*time.Second + time.Millisecond, Limit: l})
	want := map[string]string{
		"Ratelimit-Policy": `"default";q=100;w=60`,
		"Ratelimit":        `"default";r=57;t=12`,
		"Retry-After":      "",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("allowed: %s = %q, want %q", k, got, v)
		}
	}

	h = http.Header{}
	SetHeaders(h, "default", Result{RetryAfter: 600 * time.Millisecond, ResetAfter: time.Minute, Limit: l})
	want = map[string]string{
		"Ratelimit-Policy": `"default";q=100;w=60`,
		"Ratelimit":        `"default";r=0;t=60`,
		"Retry-After":      "1",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("denied: %s = %q, want %q", k, got, v)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {90 * time.Second, 90},
	} {
		if got := RetryAfterSeconds(Result{RetryAfter: tt.d}); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
