package broker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{Backoff{}, 1, time.Second},
		{Backoff{}, 2, 2 * time.Second},
		{Backoff{}, 7, time.Minute},
		{Backoff{}, 1000, time.Minute},
		{Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, 0, 10 * time.Millisecond},
		{Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, 3, 40 * time.Millisecond},
		{Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, 4, 50 * time.Millisecond},
		{Backoff{Min: time.Second, Max: time.Millisecond}, 5, time.Second},
	}
	for _, tt := range tests {
		if got := tt.b.Delay(tt.attempt); got != tt.want {
			t.Errorf("%+v.Delay(%d) = %s, want %s", tt.b, tt.attempt, got, tt.want)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	tests := []struct {
		s              string
		topic, pattern bool
	}{
		{"records", true, true},
		{"records.posts", true, true},
		{"records.posts_2.a-b", true, true},
		{"records.*", false, true},
		{"records.>", false, true},
		{">", false, true},
		{"*.posts.*", false, true},
		{"", false, false},
		{".records", false, false},
		{"records.", false, false},
		{"records..posts", false, false},
		{"records.>.posts", false, false},
		{"records.po*ts", false, false},
		{"records.posts>", false, false},
		{"records posts", false, false},
		{"récords", false, false},
		{strings.Repeat("a", 201), false, false},
	}
	for _, tt := range tests {
		if err := ValidateTopic(tt.s); (err == nil) != tt.topic || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateTopic(%q) = %v, want valid %v", tt.s, err, tt.topic)
		}
		if err := ValidatePattern(tt.s); (err == nil) != tt.pattern || err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidatePattern(%q) = %v, want valid %v", tt.s, err, tt.pattern)
		}
	}
}

func TestValidateHeader(t *testing.T) {
	tests := []struct {
		h    map[string]string
		ok   bool
		what string
	}{
		{nil, true, "nil"},
		{map[string]string{"traceparent": "00-abc-def-01", "X-Tenant": "a b\tc"}, true, "ordinary"},
		{map[string]string{"": "x"}, false, "empty name"},
		{map[string]string{"a b": "x"}, false, "space in name"},
		{map[string]string{"a:b": "x"}, false, "colon in name"},
		{map[string]string{"nats-msg-id": "x"}, false, "reserved prefix"},
		{map[string]string{"strata-key": "x"}, false, "reserved key"},
		{map[string]string{"a": "x\r\ny"}, false, "line break"},
		{map[string]string{"a": strings.Repeat("x", 5000)}, false, "too long"},
	}
	for _, tt := range tests {
		if err := ValidateHeader(tt.h); (err == nil) != tt.ok {
			t.Errorf("%s: ValidateHeader = %v, want ok %v", tt.what, err, tt.ok)
		}
	}
}

func TestValidateGroup(t *testing.T) {
	for _, g := range []string{"", "workers", "cache-invalidation_2"} {
		if err := ValidateGroup(g); err != nil {
			t.Errorf("ValidateGroup(%q) = %v", g, err)
		}
	}
	for _, g := range []string{"a.b", "a*", "a>", "a b", strings.Repeat("g", 101)} {
		if err := ValidateGroup(g); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateGroup(%q) = %v, want ErrInvalid", g, err)
		}
	}
}

func TestPosition(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 0, 5, time.UTC)
	tests := []struct {
		p    Position
		text string
	}{
		{New(), "new"},
		{Position{}, "new"},
		{Beginning(), "beginning"},
		{AtSeq(0), "beginning"},
		{AtSeq(42), "seq:42"},
		{AtTime(at), "time:2026-03-01T12:30:00.000000005Z"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.text {
			t.Errorf("String() = %q, want %q", got, tt.text)
		}
		p, err := ParsePosition(tt.text)
		if err != nil {
			t.Errorf("ParsePosition(%q): %v", tt.text, err)
			continue
		}
		if !samePosition(p, tt.p) {
			t.Errorf("ParsePosition(%q) = %v, want %v", tt.text, p, tt.p)
		}
	}
	if s, ok := AtSeq(7).Seq(); !ok || s != 7 {
		t.Errorf("AtSeq(7).Seq() = %d, %v", s, ok)
	}
	if _, ok := New().Seq(); ok {
		t.Error("New().Seq() reports a sequence")
	}
	for _, bad := range []string{"", "NEW", "seq:", "seq:0", "seq:-1", "seq:+1", "seq:x", "time:yesterday", "at:1", "seq:18446744073709551616"} {
		if _, err := ParsePosition(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePosition(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func samePosition(a, b Position) bool {
	return a.kind == b.kind && a.seq == b.seq && a.time.Equal(b.time)
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"new", "beginning", "seq:1", "seq:18446744073709551615", "time:2026-03-01T12:30:00Z", "time:2026-03-01T12:30:00.5+02:00", "seq:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// What parses prints back to text that parses to the same position.
		q, err := ParsePosition(p.String())
		if err != nil {
			t.Fatalf("ParsePosition(%q) = %v; reparse of %q: %v", s, p, p.String(), err)
		}
		if !samePosition(p, q) {
			t.Fatalf("round trip of %q: %v then %v", s, p, q)
		}
		if seq, ok := p.Seq(); ok && seq == 0 {
			t.Fatalf("ParsePosition(%q) gave sequence 0", s)
		}
	})
}

func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"records.posts", "records.*", "records.>", ">", "a..b", "a.>.b", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		topicErr, patternErr := ValidateTopic(s), ValidatePattern(s)
		if topicErr == nil && patternErr != nil {
			t.Fatalf("%q is a topic but not a pattern: %v", s, patternErr)
		}
		if patternErr != nil {
			return
		}
		toks := strings.Split(s, ".")
		for i, tok := range toks {
			if tok == "" {
				t.Fatalf("pattern %q accepted with an empty token", s)
			}
			if tok == ">" && i != len(toks)-1 {
				t.Fatalf("pattern %q accepted with '>' before the end", s)
			}
			if (tok == ">" || tok == "*") && topicErr == nil {
				t.Fatalf("topic %q accepted with a wildcard", s)
			}
			if strings.ContainsAny(tok, " \t\r\n\x00") {
				t.Fatalf("pattern %q accepted with whitespace", s)
			}
		}
	})
}
