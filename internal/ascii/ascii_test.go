package ascii

import (
	"regexp"
	"testing"
)

// patterns are the names Strata checks, each with the regular expression
// it used to be checked with.
var patterns = []struct {
	re    *regexp.Regexp
	match func(string) bool
}{
	{regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`), func(s string) bool { r := NewSet("A-Za-z0-9._-"); return Name(s, r, r, 1, 128) }},
	{regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`), func(s string) bool {
		return Name(s, NewSet("A-Za-z0-9"), NewSet("A-Za-z0-9_.:-"), 1, 128)
	}},
	{regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$`), func(s string) bool {
		return Name(s, NewSet("A-Za-z0-9_-"), NewSet("A-Za-z0-9._-"), 1, 255)
	}},
	{regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`), func(s string) bool { return Name(s, NewSet("a-z"), NewSet("a-z0-9_"), 1, 63) }},
	{regexp.MustCompile(`^[0-9]{20}_[a-z0-9_]{1,100}$`), func(s string) bool {
		d, w := NewSet("0-9"), NewSet("a-z0-9_")
		return len(s) > 21 && d.All(s[:20]) && s[20] == '_' && Name(s[21:], w, w, 1, 100)
	}},
}

func TestNewSet(t *testing.T) {
	s := NewSet("a-c_-")
	for c := range 256 {
		want := c == 'a' || c == 'b' || c == 'c' || c == '_' || c == '-'
		if s[c] != want {
			t.Errorf("NewSet(%q)[%q] = %v", "a-c_-", rune(c), s[c])
		}
	}
}

// FuzzName: the sets and Name agree with the regular expressions they
// replace.
func FuzzName(f *testing.F) {
	for _, s := range []string{"", "a", "posts", "Posts", "_x", "a-b.c:d", "..", "-", "x/y", "\xff",
		"20260101000000000000_add_posts", "2026010100000000000_x", "20260101000000000000_",
		string(make([]byte, 129)), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range patterns {
			if got, want := p.match(s), p.re.MatchString(s); got != want {
				t.Errorf("%s on %q: %v, want %v", p.re, s, got, want)
			}
		}
	})
}
