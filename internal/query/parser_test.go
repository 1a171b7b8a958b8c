package query

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"", "<nil>"},
		{"  \t\n", "<nil>"},
		{"title = 'a'", "title = 'a'"},
		{`title="a"`, "title = 'a'"},
		{`title = 'it\'s'`, `title = 'it\'s'`},
		{`title = "say \"hi\" \\ bye"`, `title = 'say "hi" \\ bye'`},
		{`title = 'a"b'`, `title = 'a"b'`},
		{"views >= 10", "views >= 10"},
		{"views > -1.5e3", "views > -1500"},
		{"views < 0.25", "views < 0.25"},
		{"views <= 1E-2", "views <= 0.01"},
		{"views != 7", "views != 7"},
		{"done = true", "done = true"},
		{"done = false", "done = false"},
		{"title = null", "title = null"},
		{"title ~ 'go'", "title ~ 'go'"},
		{"title !~ 'go'", "title !~ 'go'"},
		{"author.name = 'Ann'", "author.name = 'Ann'"},
		{"meta.a.b.0 = 1", "meta.a.b.0 = 1"},
		{"_x = 1", "_x = 1"},
		{"status in ('a', 'b',\"c\")", "status in ('a', 'b', 'c')"},
		{"status not in ('a')", "status not in ('a')"},
		{"tags in ('x')", "tags in ('x')"},
		{"a = 1 && b = 2 || c = 3", "(a = 1 && b = 2) || c = 3"},
		{"a = 1 || b = 2 && c = 3", "a = 1 || (b = 2 && c = 3)"},
		{"(a = 1 || b = 2) && c = 3", "(a = 1 || b = 2) && c = 3"},
		{"!a = 1 && b = 2", "!(a = 1) && b = 2"},
		{"!(a = 1 && b = 2)", "!(a = 1 && b = 2)"},
		{"!!a = 1", "!(!(a = 1))"},
		{"a = 1 && b = 2 && c = 3", "a = 1 && b = 2 && c = 3"},
		{"5 < views", "views > 5"},
		{"'x' = title", "title = 'x'"},
		{"null != title", "title != null"},
		{"1 <= views", "views >= 1"},
		{"title = 'é日本'", "title = 'é日本'"},
		{"not = 1", "not = 1"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.src, err)
			}
			got := "<nil>"
			if e != nil {
				got = e.String()
				// The printed form parses back to itself.
				e2, err := Parse(got)
				if err != nil || e2.String() != got {
					t.Errorf("reparse of %q: %v, %v", got, e2, err)
				}
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src  string
		pos  int
		want string // the whole message after "at N: ", or a prefix ending in "..."
	}{
		{"title foo", 6, `expected an operator (=, !=, >, >=, <, <=, ~, !~, in) after "title", found "foo"`},
		{"title = foo", 8, `expected a value after "=", found the field "foo"; comparing two fields is not supported`},
		{"title =", 7, `expected a value after "=", found end of input`},
		{"title = 'abc", 8, "unterminated string"},
		{"'abc", 0, "unterminated string"},
		{`title = 'a\`, 8, "unterminated string"},
		{`title = 'a\n'`, 10, `unknown escape "\n" in a string; only \\, \' and \" are allowed`},
		{"title", 5, `expected an operator (=, !=, >, >=, <, <=, ~, !~, in) after "title", found end of input`},
		{"= 1", 0, `expected a field or a value, found "="`},
		{"(a = 1", 6, `expected ")" to close the "(" at 0, found end of input`},
		{"a = 1)", 5, `unmatched ")"`},
		{"a = 1 b = 2", 6, `expected "&&", "||" or end of input, found "b"`},
		{"a = 1 & b = 2", 6, `expected "&&", found a single "&"`},
		{"a = 1 | b = 2", 6, `expected "||", found a single "|"`},
		{"a = 1 &&", 8, `expected a field or a value, found end of input`},
		{"a = 1 && || b = 1", 9, `expected a field or a value, found "||"`},
		{"a = #", 4, `unexpected character '#'`},
		{"a = 1.", 4, `invalid number "1.": expected digits after the decimal point`},
		{"a = 1e", 4, `invalid number "1e": expected digits in the exponent`},
		{"a = 12abc", 4, `invalid number "12abc"`},
		{"a = 1e999", 4, "number 1e999 is out of range"},
		{"a = -x", 4, `unexpected character '-'`},
		{"1 = 2", 0, `expected a field on one side of "=", found two values`},
		{"'x' ~ title", 0, `expected a field on the left of "~", found "'x'"`},
		{"a in 1", 5, `expected "(" after "in", found "1"`},
		{"a in ()", 6, `expected a value in the "in" list, found ")"`},
		{"a in (1,)", 8, `expected a value in the "in" list, found ")"`},
		{"a in (1 2)", 8, `expected "," or ")" in the "in" list, found "2"`},
		{"a in (b)", 6, `expected a value in the "in" list, found the field "b"`},
		{"a not (1)", 2, `expected an operator (=, !=, >, >=, <, <=, ~, !~, in) after "a", found "not"`},
		{"a not in 1", 9, `expected "(" after "not in", found "1"`},
		{"1 in (1)", 0, `expected a field on the left of "in", found "1"`},
		{"in = 1", 0, `expected a field or a value, found "in"`},
		{"a..b = 1", 2, `invalid field path "a..b": empty segment`},
		{"a. = 1", 2, `invalid field path "a.": expected a name after the last "."`},
		{"a = 'x\x00'", 6, "filter contains a NUL character"},
		{"a = '\xff'", 5, "filter is not valid UTF-8"},
		{"a = 1 ~ 2", 6, `expected "&&", "||" or end of input, found "~"`},
		{"a = " + strings.Repeat("x", 5000), MaxLength, "filter is longer than 4096 bytes"},
		{strings.Repeat("(", 65) + "a = 1" + strings.Repeat(")", 65), 64, "filter nests deeper than 64 levels of parentheses and !"},
		{strings.Repeat("!", 65) + "a = 1", 64, "filter nests deeper than 64 levels of parentheses and !"},
		{"a in (" + strings.Repeat("1,", 100) + "1)", 206, `an "in" list holds at most 100 values`},
		{"a = '" + strings.Repeat("y", 60) + "' b", 67, `expected "&&", "||" or end of input, found "b"`},
		{"a = 1 && " + "'" + strings.Repeat("y", 60) + "' b", 72, `expected an operator (=, !=, >, >=, <, <=, ~, !~, in) after "'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...", found "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.src[:min(len(tt.src), 40)], func(t *testing.T) {
			e, err := Parse(tt.src)
			var qe *Error
			if !errors.As(err, &qe) {
				t.Fatalf("Parse(%q) = %v, %v; want an *Error", tt.src, e, err)
			}
			if qe.Pos != tt.pos || qe.Msg != tt.want {
				t.Errorf("Parse(%q) error\n got: at %d: %s\nwant: at %d: %s", tt.src, qe.Pos, qe.Msg, tt.pos, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "at ") {
				t.Errorf("Error() = %q", err.Error())
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	// At the limits, filters parse.
	deep := strings.Repeat("(", 64) + "a = 1" + strings.Repeat(")", 64)
	if _, err := Parse(deep); err != nil {
		t.Errorf("64 levels: %v", err)
	}
	in := "a in (" + strings.Repeat("1,", 99) + "1)"
	if _, err := Parse(in); err != nil {
		t.Errorf("100 items: %v", err)
	}
	long := "a = '" + strings.Repeat("x", MaxLength-6) + "'"
	if _, err := Parse(long); err != nil || len(long) != MaxLength {
		t.Errorf("%d bytes: %v", len(long), err)
	}
	// Long chains of && are not nested and need no depth.
	chain := "a = 1" + strings.Repeat(" && a = 1", 400)
	if _, err := Parse(chain); err != nil {
		t.Errorf("chain: %v", err)
	}
}

func TestErrorString(t *testing.T) {
	err := &Error{Pos: 12, Msg: `expected a value after "=", found end of input`}
	if got := err.Error(); got != `at 12: expected a value after "=", found end of input` {
		t.Errorf("Error() = %q", got)
	}
}

func TestParseSort(t *testing.T) {
	tests := []struct {
		src  string
		want []Sort
	}{
		{"", nil},
		{"  ", nil},
		{"title", []Sort{{Path: "title", Pos: 0}}},
		{"-created,title", []Sort{{Path: "created", Desc: true, Pos: 1}, {Path: "title", Pos: 9}}},
		{"+a, -b.c ,meta.x.0", []Sort{{Path: "a", Pos: 1}, {Path: "b.c", Desc: true, Pos: 5}, {Path: "meta.x.0", Pos: 10}}},
		{" title", []Sort{{Path: "title", Pos: 1}}}, // "+title" after URL decoding
	}
	for _, tt := range tests {
		got, err := ParseSort(tt.src)
		if err != nil {
			t.Errorf("ParseSort(%q): %v", tt.src, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseSort(%q) = %v, want %v", tt.src, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ParseSort(%q)[%d] = %+v, want %+v", tt.src, i, got[i], tt.want[i])
			}
		}
	}
}

func TestParseSortErrors(t *testing.T) {
	tests := []struct {
		src  string
		pos  int
		want string
	}{
		{"a,,b", 2, `expected a field to sort by, found ","`},
		{"a,", 2, `expected a field to sort by, found end of input`},
		{",a", 0, `expected a field to sort by, found ","`},
		{"-", 1, `expected a field to sort by, found end of input`},
		{"--a", 1, `expected a field to sort by, found "-a"`},
		{"1a", 0, `expected a field to sort by, found "1a"`},
		{"a desc", 2, `expected "," or end of input after "a", found "desc"`},
		{"a-b", 1, `expected "," or end of input after "a", found "-b"`},
		{"a,-a", 3, `"a" appears twice in the sort`},
		{"a..b", 2, `invalid field path "a..b": empty segment`},
		{"a.", 2, `invalid field path "a.": expected a name after the last "."`},
		{"a'--", 1, `expected "," or end of input after "a", found "'--"`},
		{"a\xff", 1, "sort is not valid UTF-8"},
		{strings.Repeat("x", MaxLength+1), MaxLength, "sort is longer than 4096 bytes"},
	}
	for _, tt := range tests {
		_, err := ParseSort(tt.src)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("ParseSort(%q) = %v; want an *Error", tt.src, err)
			continue
		}
		if qe.Pos != tt.pos || qe.Msg != tt.want {
			t.Errorf("ParseSort(%q) error\n got: at %d: %s\nwant: at %d: %s", tt.src, qe.Pos, qe.Msg, tt.pos, tt.want)
		}
	}
	var many []string
	for i := range MaxSorts + 1 {
		many = append(many, "f"+string(rune('a'+i)))
	}
	if _, err := ParseSort(strings.Join(many, ",")); err == nil {
		t.Errorf("%d terms: no error", len(many))
	}
}
