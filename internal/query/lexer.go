package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a syntax or type error in a filter or sort, at a byte offset of
// its source.
type Error struct {
	Pos int // byte offset in the source, 0-based
	Msg string
}

// Error formats the error as "at POS: MSG".
func (e *Error) Error() string { return fmt.Sprintf("at %d: %s", e.Pos, e.Msg) }

func errorf(pos int, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Limits on what a filter may ask for.
const (
	MaxLength  = 4096 // bytes of filter or sort source
	MaxDepth   = 64   // nesting of parentheses and "!"
	MaxInItems = 100  // items of an in list
	MaxHops    = 3    // relations a path passes through
	MaxSorts   = 16   // terms of a sort
)

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tVar
	tString
	tNumber
	tLParen
	tRParen
	tComma
	tAnd
	tOr
	tNot
	tOp
)

type token struct {
	kind tokKind
	pos  int
	text string  // as written in the source
	str  string  // tString: the decoded value
	num  float64 // tNumber
	op   Op      // tOp
}

// describe names a token for an error message.
func (t token) describe() string {
	if t.kind == tEOF {
		return "end of input"
	}
	s := t.text
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

// checkSource applies the limits every source must meet before it is read.
func checkSource(src, what string) error {
	if len(src) > MaxLength {
		return errorf(MaxLength, "%s is longer than %d bytes", what, MaxLength)
	}
	for i, r := range src {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(src[i:]); size == 1 {
				return errorf(i, "%s is not valid UTF-8", what)
			}
		}
		if r == 0 {
			return errorf(i, "%s contains a NUL character", what)
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// identEnd returns where the name or dotted path that goes on at i ends.
func identEnd(src string, i int) int {
	for i < len(src) && (isIdentChar(src[i]) || src[i] == '.') {
		i++
	}
	return i
}

// lex splits src into tokens, ending with a tEOF token at len(src).
func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for {
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i == len(src) {
			return append(toks, token{kind: tEOF, pos: i}), nil
		}
		t, err := lexOne(src, i)
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		i += len(t.text)
	}
}

var twoCharOps = map[string]token{
	"&&": {kind: tAnd}, "||": {kind: tOr},
	"!=": {kind: tOp, op: Neq}, "!~": {kind: tOp, op: NotContains},
	">=": {kind: tOp, op: Gte}, "<=": {kind: tOp, op: Lte},
}

var oneCharOps = map[byte]token{
	'(': {kind: tLParen}, ')': {kind: tRParen}, ',': {kind: tComma}, '!': {kind: tNot},
	'=': {kind: tOp, op: Eq}, '>': {kind: tOp, op: Gt}, '<': {kind: tOp, op: Lt},
	'~': {kind: tOp, op: Contains},
}

func lexOne(src string, i int) (token, error) {
	c := src[i]
	switch {
	case c == '\'' || c == '"':
		return lexString(src, i)
	case isDigit(c) || (c == '-' && i+1 < len(src) && isDigit(src[i+1])):
		return lexNumber(src, i)
	case isIdentStart(c):
		return token{kind: tIdent, pos: i, text: src[i:identEnd(src, i+1)]}, nil
	case c == '@':
		if i+1 == len(src) || !isIdentStart(src[i+1]) {
			return token{}, errorf(i, `expected a variable name after "@", such as @request.auth.id`)
		}
		return token{kind: tVar, pos: i, text: src[i:identEnd(src, i+1)]}, nil
	}
	if i+1 < len(src) {
		if t, ok := twoCharOps[src[i:i+2]]; ok {
			t.pos, t.text = i, src[i:i+2]
			return t, nil
		}
	}
	if t, ok := oneCharOps[c]; ok {
		t.pos, t.text = i, src[i:i+1]
		return t, nil
	}
	switch c {
	case '&':
		return token{}, errorf(i, `expected "&&", found a single "&"`)
	case '|':
		return token{}, errorf(i, `expected "||", found a single "|"`)
	}
	r, _ := utf8.DecodeRuneInString(src[i:])
	return token{}, errorf(i, "unexpected character %q", r)
}

func lexString(src string, start int) (token, error) {
	quote := src[start]
	var b strings.Builder
	for i := start + 1; i < len(src); i++ {
		switch c := src[i]; c {
		case quote:
			return token{kind: tString, pos: start, text: src[start : i+1], str: b.String()}, nil
		case '\\':
			if i+1 == len(src) {
				return token{}, errorf(start, "unterminated string")
			}
			switch e := src[i+1]; e {
			case '\\', '\'', '"':
				b.WriteByte(e)
				i++
			default:
				r, _ := utf8.DecodeRuneInString(src[i+1:])
				return token{}, errorf(i, `unknown escape "\%c" in a string; only \\, \' and \" are allowed`, r)
			}
		default:
			b.WriteByte(c)
		}
	}
	return token{}, errorf(start, "unterminated string")
}

// lexNumber reads -?digits(.digits)?([eE][+-]?digits)?.
func lexNumber(src string, start int) (token, error) {
	i := start
	if src[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(src) && isDigit(src[i]) {
			i++
		}
		return i - j
	}
	digits()
	if i < len(src) && src[i] == '.' {
		i++
		if digits() == 0 {
			return token{}, errorf(start, "invalid number %q: expected digits after the decimal point", src[start:i])
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if digits() == 0 {
			return token{}, errorf(start, "invalid number %q: expected digits in the exponent", src[start:i])
		}
	}
	if i < len(src) && (isIdentChar(src[i]) || src[i] == '.') {
		j := i
		for j < len(src) && (isIdentChar(src[j]) || src[j] == '.') {
			j++
		}
		return token{}, errorf(start, "invalid number %q", src[start:j])
	}
	text := src[start:i]
	n, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(n, 0) {
		return token{}, errorf(start, "number %s is out of range", text)
	}
	return token{kind: tNumber, pos: start, text: text, num: n}, nil
}
