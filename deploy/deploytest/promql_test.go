package deploytest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricNames returns the metric names a PromQL expression selects, in
// order of first use, each once. It is a small lexer, not a parser: it
// skips strings, label matchers ({...}), ranges ([...]), numbers and
// durations, Grafana variables ($var, ${var}, [[var]]), grouping label
// lists (by, without, on, ignoring, group_left, group_right) and keywords,
// and reads every other identifier as a metric name, unless a "(" follows,
// which makes it a function: one not in promqlFunctions is an error, so a
// typo cannot pass for a function. A {__name__="x"} matcher names x; a
// __name__ matched any other way is an error, as it could select anything.
func metricNames(expr string) ([]string, error) {
	l := &lexer{s: expr}
	var names []string
	add := func(n string) {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for {
		l.skipSpace()
		if l.eof() {
			return names, nil
		}
		c := l.s[l.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return nil, err
			}
		case c == '{':
			n, err := l.matchers()
			if err != nil {
				return nil, err
			}
			if n != "" {
				add(n)
			}
		case strings.HasPrefix(l.s[l.i:], "[["): // a Grafana variable, [[name]]
			j := strings.Index(l.s[l.i:], "]]")
			if j < 0 {
				return nil, fmt.Errorf("no ]] closes [[ at offset %d", l.i)
			}
			l.i += j + 2
		case c == '[':
			if err := l.skipTo(']'); err != nil {
				return nil, err
			}
		case c == '$':
			if err := l.variable(); err != nil {
				return nil, err
			}
		case isDigit(c) || (c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1])):
			l.number()
		case isIdentStart(c):
			word := l.ident()
			kw := strings.ToLower(word)
			switch {
			case groupingKeywords[kw]:
				l.skipSpace()
				if !l.eof() && l.s[l.i] == '(' {
					if err := l.labelList(); err != nil {
						return nil, fmt.Errorf("%s: %w", word, err)
					}
				} else if kw != "group_left" && kw != "group_right" {
					return nil, fmt.Errorf("%q at offset %d needs a label list in parentheses", word, l.i)
				}
			case keywords[kw] || aggregations[kw]:
				// operators, modifiers, aggregations: no metric
			case l.peek() == '(':
				if !promqlFunctions[word] {
					return nil, fmt.Errorf("unknown function %q at offset %d", word, l.i-len(word))
				}
			default:
				add(word)
			}
		case strings.IndexByte("()+-*/%^=!<>,@", c) >= 0:
			l.i++
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", c, l.i)
		}
	}
}

type lexer struct {
	s string
	i int
}

func (l *lexer) eof() bool { return l.i >= len(l.s) }

func (l *lexer) skipSpace() {
	for !l.eof() {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.i++
		case c == '#': // a comment runs to the end of the line
			for !l.eof() && l.s[l.i] != '\n' {
				l.i++
			}
		default:
			return
		}
	}
}

// peek returns the next character after spaces, or 0 at the end.
func (l *lexer) peek() byte {
	l.skipSpace()
	if l.eof() {
		return 0
	}
	return l.s[l.i]
}

func (l *lexer) ident() string {
	start := l.i
	for !l.eof() && isIdentChar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// number skips a number or a duration: 1, 0.99, .5, 1e-3, 0x1f, 5m, 1h30m.
func (l *lexer) number() {
	start := l.i
	for !l.eof() {
		c := l.s[l.i]
		switch {
		case isIdentChar(c) || c == '.':
			l.i++
		case (c == '+' || c == '-') && (l.s[l.i-1] == 'e' || l.s[l.i-1] == 'E') &&
			!strings.ContainsAny(l.s[start:l.i], "xX"): // an exponent's sign, not in hex
			l.i++
		default:
			return
		}
	}
}

// str reads a quoted string and returns its raw contents.
func (l *lexer) str() (string, error) {
	q, start := l.s[l.i], l.i
	l.i++
	var b strings.Builder
	for !l.eof() {
		c := l.s[l.i]
		l.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && q != '`':
			if l.eof() {
				break
			}
			b.WriteByte(c)
			c = l.s[l.i]
			l.i++
		case c == '\n' && q != '`':
			return "", fmt.Errorf("newline in string starting at offset %d", start)
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("unterminated string starting at offset %d", start)
}

func (l *lexer) skipTo(end byte) error {
	start := l.i
	if j := strings.IndexByte(l.s[l.i:], end); j >= 0 {
		l.i += j + 1
		return nil
	}
	return fmt.Errorf("no %q closes %q at offset %d", end, l.s[start], start)
}

// variable skips a Grafana variable: $name or ${name...}.
func (l *lexer) variable() error {
	l.i++ // $
	if !l.eof() && l.s[l.i] == '{' {
		return l.skipTo('}')
	}
	if l.ident() == "" {
		return fmt.Errorf("lone $ at offset %d", l.i-1)
	}
	return nil
}

// labelList skips a parenthesized list of label names.
func (l *lexer) labelList() error {
	l.i++ // (
	for {
		switch c := l.peek(); {
		case c == ')':
			l.i++
			return nil
		case c == ',':
			l.i++
		case isIdentStart(c):
			l.ident()
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %q in a label list at offset %d", c, l.i)
		}
	}
}

// matchers skips a {...} list of label matchers and returns the metric
// name it sets, if any: {__name__="x"}, or a quoted name alone: {"x"}.
func (l *lexer) matchers() (string, error) {
	start := l.i
	l.i++ // {
	name := ""
	for {
		c := l.peek()
		switch {
		case c == '}':
			l.i++
			return name, nil
		case c == ',':
			l.i++
			continue
		case c == '$': // a Grafana variable in place of a matcher
			if err := l.variable(); err != nil {
				return "", err
			}
			continue
		}
		var label string
		switch {
		case isIdentStart(c):
			label = l.ident()
		case c == '"' || c == '\'' || c == '`':
			s, err := l.str()
			if err != nil {
				return "", err
			}
			if c := l.peek(); c == ',' || c == '}' {
				if !metricNameRE.MatchString(s) {
					return "", fmt.Errorf("unsupported metric name %q in a selector at offset %d", s, start)
				}
				name = s
				continue
			}
			label = s
		case c == 0:
			return "", fmt.Errorf("no '}' closes '{' at offset %d", start)
		default:
			return "", fmt.Errorf("unexpected %q in label matchers at offset %d", c, l.i)
		}
		l.skipSpace()
		op := ""
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(l.s[l.i:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return "", fmt.Errorf("label %q without a matcher at offset %d", label, l.i)
		}
		l.i += len(op)
		switch l.peek() {
		case '"', '\'', '`':
		default:
			return "", fmt.Errorf("label %q: the value must be a string, at offset %d", label, l.i)
		}
		v, err := l.str()
		if err != nil {
			return "", err
		}
		if label == "__name__" {
			if op != "=" || !metricNameRE.MatchString(v) {
				return "", fmt.Errorf("__name__%s%q at offset %d: only __name__=\"metric\" can be checked", op, v, start)
			}
			name = v
		}
	}
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || c == ':' || 'a' <= c|0x20 && c|0x20 <= 'z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// groupingKeywords take a parenthesized label list (optional after
// group_left and group_right).
var groupingKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")

// keywords are PromQL's other reserved words, case-insensitive.
var keywords = set("and", "or", "unless", "atan2", "offset", "bool", "inf", "nan")

var aggregations = set("sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
	"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio")

// promqlFunctions are PromQL's functions (Prometheus 3), plus start and end
// of the @ modifier.
var promqlFunctions = set(
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
	"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
	"delta", "deriv", "double_exponential_smoothing", "exp", "first_over_time", "floor",
	"histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
	"histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta",
	"increase", "info", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10",
	"log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
	"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
	"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
	"sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh",
	"time", "timestamp", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
	"ts_of_min_over_time", "vector", "year",
	"start", "end",
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`up{job=~"strata.*"} == 0`, []string{"up"}},
		{`sum by (job) (rate(strata_http_request_duration_seconds_count{route!="unmatched",status="5xx"}[5m]))`,
			[]string{"strata_http_request_duration_seconds_count"}},
		{`sum(rate(x_total[5m])) by (job, instance) / on(job) group_left(team) y`, []string{"x_total", "y"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job",instance=~"$instance"}[$__rate_interval])))`,
			[]string{"a_bucket"}},
		{`rate(a[${__rate_interval}]) * on (instance) group_right b`, []string{"a", "b"}},
		{`a / ignoring (status) group_left sum without (status) (b)`, []string{"a", "b"}},
		{`predict_linear(free[6h], 24 * 3600) < 0 and free / size < 0.10`, []string{"free", "size"}},
		{`1 - (x / on (job) strata:http_requests:rate5m)`, []string{"x", "strata:http_requests:rate5m"}},
		{`absent(up{job=~"strata.*"}) or vector(0) > bool 1`, []string{"up"}},
		{`SUM BY (job) (a) OR b UNLESS c offset 1h30m`, []string{"a", "b", "c"}},
		{`a @ start() + b @ 1609746000 - c offset -5m`, []string{"a", "b", "c"}},
		{`label_replace(a, "dst", "$1", "src", "(.*)") + count_values("by", b)`, []string{"a", "b"}},
		{`topk(5, a) + quantile(0.9, b) + a`, []string{"a", "b"}},
		{`{"quoted.name"}`, nil}, // a UTF-8 name: an error, as it cannot be checked
		{`max_over_time(a[1h:5m]) + 1e-3 + 0x1F + .5 + Inf + NaN`, []string{"a"}},
		{"a # a comment naming not_a_metric\n+ b", []string{"a", "b"}},
		{`sum by (le, "label with space") (rate(a[5m]))`, []string{"a"}},
		{`{__name__="from_matcher", job="x"} + {"quoted_name"}`, []string{"from_matcher", "quoted_name"}},
		{`[[var]] + a{instance=~"[[instance]]"}`, []string{"a"}},
		{`a{$filters} + b`, []string{"a", "b"}},
	} {
		got, err := metricNames(tc.expr)
		if tc.want == nil {
			if err == nil {
				t.Errorf("metricNames(%q) = %q, want an error", tc.expr, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("metricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestMetricNamesErrors(t *testing.T) {
	for _, expr := range []string{
		`rat(a[5m])`,              // unknown function
		`a{job="x"`,               // unclosed matchers
		`a{job=x}`,                // unquoted value
		`a{job}`,                  // no operator
		`a[5m`,                    // unclosed range
		`a{job="x}`,               // unterminated string
		`{__name__=~"strata_.*"}`, // regex name: cannot be checked
		`a by job`,                // grouping without a list
		`a & b`,                   // no such operator
		`$`,                       // lone dollar
	} {
		got, err := metricNames(expr)
		if err == nil {
			t.Errorf("metricNames(%q) = %q, want an error", expr, got)
		}
	}
}

func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{
		`up{job=~"strata.*"} == 0`,
		`histogram_quantile(0.99, sum by (le, route) (rate(strata_http_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))`,
		`sum(rate(a[5m])) by (job) / on(job) group_left(x) b offset 1h @ end()`,
		`{__name__="a"} + {"b"} + c{d!~'e\'f'}` + "+ `raw`",
		`predict_linear(strata_data_disk_free_bytes[6h], 24 * 3600) < 1e-3`,
		"a # comment\n- b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := metricNames(expr)
		if err != nil {
			return
		}
		for i, n := range names {
			if !metricNameRE.MatchString(n) {
				t.Fatalf("metricNames(%q) returned %q, not a metric name", expr, n)
			}
			if !strings.Contains(expr, n) {
				t.Fatalf("metricNames(%q) returned %q, which is not in the expression", expr, n)
			}
			if slices.Contains(names[:i], n) {
				t.Fatalf("metricNames(%q) returned %q twice", expr, n)
			}
			if lower := strings.ToLower(n); keywords[lower] || aggregations[lower] || groupingKeywords[lower] {
				t.Fatalf("metricNames(%q) returned the keyword %q", expr, n)
			}
		}
		// Wrapped in an aggregation over a rate, the same expression
		// names the same metrics.
		wrapped, err := metricNames("sum by (job) (rate((" + expr + "\n)[5m:1m]))")
		if err != nil {
			return // e.g. a comment or an open string swallowing the suffix
		}
		if !slices.Equal(wrapped, names) {
			t.Fatalf("metricNames(%q) = %q, but wrapped it is %q", expr, names, wrapped)
		}
	})
}
