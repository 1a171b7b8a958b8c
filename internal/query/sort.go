package query

import (
	"strings"
)

// Sort is one term of a sort: a field path and its direction.
type Sort struct {
	Path string
	Desc bool
	Pos  int // byte offset of the path in the sort source
}

// ParseSort parses a comma-separated list of field paths, each optionally
// prefixed by "-" (descending) or "+" (ascending, the default), such as
// "-created,title,meta.score". Blanks around terms are ignored, so a "+"
// that a URL query decoded into a space does no harm. A blank source gives
// nil. Errors are *Error values.
func ParseSort(src string) ([]Sort, error) {
	if err := checkSource(src, "sort"); err != nil {
		return nil, err
	}
	if strings.TrimLeft(src, " \t\r\n") == "" {
		return nil, nil
	}
	var sorts []Sort
	seen := map[string]bool{}
	start := 0
	for {
		end := strings.IndexByte(src[start:], ',')
		if end < 0 {
			end = len(src)
		} else {
			end += start
		}
		s, err := parseSortTerm(src, start, end)
		if err != nil {
			return nil, err
		}
		if seen[s.Path] {
			return nil, errorf(s.Pos, "%q appears twice in the sort", s.Path)
		}
		seen[s.Path] = true
		if len(sorts) == MaxSorts {
			return nil, errorf(s.Pos, "a sort has at most %d terms", MaxSorts)
		}
		sorts = append(sorts, s)
		if end == len(src) {
			return sorts, nil
		}
		start = end + 1
	}
}

// parseSortTerm reads the term in src[start:end].
func parseSortTerm(src string, start, end int) (Sort, error) {
	i := start
	for i < end && isSpace(src[i]) {
		i++
	}
	j := end
	for j > i && isSpace(src[j-1]) {
		j--
	}
	if i == j {
		found := "end of input"
		if end < len(src) {
			found = `","`
		}
		return Sort{}, errorf(i, "expected a field to sort by, found %s", found)
	}
	s := Sort{}
	switch src[i] {
	case '-':
		s.Desc = true
		i++
	case '+':
		i++
	}
	s.Pos = i
	if i == j || !isIdentStart(src[i]) {
		return Sort{}, errorf(i, "expected a field to sort by, found %s", describeAt(src, i, j, end))
	}
	k := i
	for k < j && (isIdentChar(src[k]) || src[k] == '.') {
		k++
	}
	if k < j {
		path := src[i:k]
		for isSpace(src[k]) {
			k++
		}
		return Sort{}, errorf(k, `expected "," or end of input after %q, found %s`, path, describeAt(src, k, j, end))
	}
	s.Path = src[i:j]
	if d := strings.Index(s.Path, ".."); d >= 0 {
		return Sort{}, errorf(i+d+1, "invalid field path %q: empty segment", s.Path)
	}
	if strings.HasSuffix(s.Path, ".") {
		return Sort{}, errorf(j, "invalid field path %q: expected a name after the last \".\"", s.Path)
	}
	return s, nil
}

// describeAt names what src[i:j] holds, for an error in the term that
// ends at end.
func describeAt(src string, i, j, end int) string {
	switch {
	case i < j:
		return token{kind: tIdent, text: src[i:j]}.describe()
	case end < len(src):
		return `","`
	}
	return "end of input"
}
