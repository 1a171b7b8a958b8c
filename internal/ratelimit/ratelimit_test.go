package ratelimit

import (
	"errors"
	"testing"
	"time"
)

func TestGCRA(t *testing.T) {
	// Interval 10, burst 3: tolerance 30.
	tests := []struct {
		name        string
		now, tat, n int64
		want        Decision
	}{
		{"idle key", 100, 0, 1, Decision{Allowed: true, TAT: 110, Remaining: 2, ResetAfter: 10}},
		{"idle key, whole burst", 100, 0, 3, Decision{Allowed: true, TAT: 130, Remaining: 0, ResetAfter: 30}},
		{"last of the burst", 100, 120, 1, Decision{Allowed: true, TAT: 130, Remaining: 0, ResetAfter: 30}},
		{"over the burst", 100, 130, 1, Decision{TAT: 130, Remaining: 0, RetryAfter: 10, ResetAfter: 30}},
		{"one unit early", 109, 130, 1, Decision{TAT: 130, Remaining: 0, RetryAfter: 1, ResetAfter: 21}},
		{"exactly on time", 110, 130, 1, Decision{Allowed: true, TAT: 140, Remaining: 0, ResetAfter: 30}},
		{"cost 2 with 1 left", 100, 120, 2, Decision{TAT: 120, Remaining: 1, RetryAfter: 10, ResetAfter: 20}},
		{"peek", 100, 115, 0, Decision{Allowed: true, TAT: 115, Remaining: 1, ResetAfter: 15}},
		{"peek at an idle key", 100, 50, 0, Decision{Allowed: true, TAT: 100, Remaining: 3, ResetAfter: 0}},
		{"partial refill rounds down", 105, 130, 0, Decision{Allowed: true, TAT: 130, Remaining: 0, ResetAfter: 25}},
		{"lowered limit", 100, 200, 1, Decision{TAT: 200, Remaining: 0, RetryAfter: 80, ResetAfter: 100}},
	}
	for _, tt := range tests {
		if got := GCRA(tt.now, tt.tat, 10, 3, tt.n); got != tt.want {
			t.Errorf("%s: GCRA(now %d, tat %d, n %d) = %+v, want %+v", tt.name, tt.now, tt.tat, tt.n, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	l := Limit{Rate: 10, Period: time.Second} // burst defaults to 10
	for _, n := range []int{0, 1, 10} {
		if err := Check(l, n); err != nil {
			t.Errorf("Check(%v, %d): %v", l, n, err)
		}
	}
	for _, n := range []int{-1, 11} {
		if err := Check(l, n); !errors.Is(err, ErrInvalidCost) {
			t.Errorf("Check(%v, %d) = %v, want ErrInvalidCost", l, n, err)
		}
	}
	if err := Check(Limit{}, 1); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("Check(zero limit) = %v, want ErrInvalidLimit", err)
	}
}

func TestFailPolicy(t *testing.T) {
	l := Limit{Rate: 10, Period: time.Second, Burst: 5}
	open := FailOpen.Fallback(l, 2, time.Second)
	if !open.Allowed || !open.Fallback || open.Remaining != 3 || open.Limit != l {
		t.Errorf("FailOpen.Fallback = %+v", open)
	}
	closed := FailClosed.Fallback(l, 2, 3*time.Second)
	if closed.Allowed || !closed.Fallback || closed.RetryAfter != 3*time.Second {
		t.Errorf("FailClosed.Fallback = %+v", closed)
	}
	if FailOpen.String() != "open" || FailClosed.String() != "closed" {
		t.Errorf("String() = %q, %q", FailOpen, FailClosed)
	}
}
