package query

import (
	"fmt"
	"strings"
)

// Parse parses a filter. A blank filter gives a nil Expr and no error. Errors
// are *Error values that say where the filter went wrong and what was
// expected there.
//
// The grammar, loosest binding first:
//
//	or       = and { "||" and }
//	and      = unary { "&&" unary }
//	unary    = "!" unary | "(" or ")" | compare
//	compare  = side op side
//	         | (path | variable) ["not"] "in" "(" value { "," value } ")"
//	side     = path | variable | value
//	op       = "=" | "!=" | ">" | ">=" | "<" | "<=" | "~" | "!~"
//	value    = string | number | "true" | "false" | "null"
//	string   = "'" chars "'" | '"' chars '"'    (escapes: \\ \' \")
//	number   = ["-"] digits ["." digits] [("e" | "E") ["+" | "-"] digits]
//	path     = (letter | "_") { letter | digit | "_" | "." }
//	variable = "@" path                         (only in rules: see Request)
//
// At most one side of a comparison is a path, and at least one is a path
// or a variable: two values, or two fields, are not compared. The left of
// ~ and !~ is never a value, and never a variable when the right is a
// path. A comparison is written with its path, else its variable, on the
// left: 5 < views is views > 5, and @request.auth.id = owner is
// owner = @request.auth.id. It is a unit: !title = 'a' is !(title = 'a').
// A filter is at most MaxLength bytes of UTF-8, nests at most MaxDepth
// parentheses and !, and an in list holds at most MaxInItems values.
func Parse(src string) (Expr, error) {
	if err := checkSource(src, "filter"); err != nil {
		return nil, err
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return nil, nil
	}
	p := &parser{toks: toks}
	return p.parse()
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// bail carries a syntax error up through the recursive descent.
type bail struct{ err *Error }

func (p *parser) parse() (e Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, ok := r.(bail)
			if !ok {
				panic(r)
			}
			e, err = nil, b.err
		}
	}()
	e = p.or()
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tRParen {
			p.fail(t.pos, `unmatched ")"`)
		}
		p.fail(t.pos, `expected "&&", "||" or end of input, found %s`, t.describe())
	}
	return e, nil
}

func (p *parser) fail(pos int, format string, args ...any) {
	panic(bail{errorf(pos, format, args...)})
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) or() Expr {
	x := p.and()
	for p.peek().kind == tOr {
		p.next()
		x = &Logical{Op: Or, X: x, Y: p.and()}
	}
	return x
}

func (p *parser) and() Expr {
	x := p.unary()
	for p.peek().kind == tAnd {
		p.next()
		x = &Logical{Op: And, X: x, Y: p.unary()}
	}
	return x
}

func (p *parser) enter(pos int) {
	p.depth++
	if p.depth > MaxDepth {
		p.fail(pos, "filter nests deeper than %d levels of parentheses and !", MaxDepth)
	}
}

func (p *parser) unary() Expr {
	switch t := p.peek(); t.kind {
	case tNot:
		p.enter(t.pos)
		p.next()
		x := p.unary()
		p.depth--
		return &Not{Pos: t.pos, X: x}
	case tLParen:
		p.enter(t.pos)
		p.next()
		x := p.or()
		if c := p.next(); c.kind != tRParen {
			p.fail(c.pos, `expected ")" to close the "(" at %d, found %s`, t.pos, c.describe())
		}
		p.depth--
		return x
	}
	return p.compare()
}

// operand is one side of a comparison: a path, a variable or a literal.
type operand struct {
	tok    token
	isPath bool
	isVar  bool
	lit    Literal // a literal, or a KindVar for a variable
}

// isValue reports whether o is a literal.
func (o operand) isValue() bool { return !o.isPath && !o.isVar }

// describe names the operand for an error message.
func (o operand) describe() string {
	if o.isVar {
		return "the variable " + o.tok.describe()
	}
	return o.tok.describe()
}

// operand reads a path, a variable or a literal; want says what was
// expected, for the error when none is found.
func (p *parser) operand(want string) operand {
	t := p.next()
	switch t.kind {
	case tString:
		return operand{tok: t, lit: Literal{Kind: KindString, Pos: t.pos, Str: t.str}}
	case tNumber:
		return operand{tok: t, lit: Literal{Kind: KindNumber, Pos: t.pos, Num: t.num}}
	case tVar:
		checkPath(p, t)
		return operand{tok: t, isVar: true, lit: Literal{Kind: KindVar, Pos: t.pos, Str: t.text}}
	case tIdent:
		switch t.text {
		case "true", "false":
			return operand{tok: t, lit: Literal{Kind: KindBool, Pos: t.pos, Bool: t.text == "true"}}
		case "null":
			return operand{tok: t, lit: Literal{Kind: KindNull, Pos: t.pos}}
		case "in":
		default:
			checkPath(p, t)
			return operand{tok: t, isPath: true}
		}
	}
	p.fail(t.pos, "expected %s, found %s", want, t.describe())
	return operand{}
}

// checkPath refuses paths with empty segments such as "a..b" or "a.".
func checkPath(p *parser, t token) {
	if i := strings.Index(t.text, ".."); i >= 0 {
		p.fail(t.pos+i+1, "invalid field path %q: empty segment", t.text)
	}
	if strings.HasSuffix(t.text, ".") {
		p.fail(t.pos+len(t.text), "invalid field path %q: expected a name after the last \".\"", t.text)
	}
}

const opList = "(=, !=, >, >=, <, <=, ~, !~, in)"

func (p *parser) compare() Expr {
	left := p.operand("a field or a value")
	opTok := p.next()
	var op Op
	switch {
	case opTok.kind == tOp:
		op = opTok.op
	case opTok.kind == tIdent && opTok.text == "in":
		op = In
	case opTok.kind == tIdent && opTok.text == "not" && p.peek().kind == tIdent && p.peek().text == "in":
		p.next()
		op = NotIn
	default:
		p.fail(opTok.pos, "expected an operator %s after %s, found %s", opList, left.tok.describe(), opTok.describe())
	}
	if op == In || op == NotIn {
		if left.isValue() {
			p.fail(left.tok.pos, "expected a field on the left of %q, found %s", op.String(), left.tok.describe())
		}
		return &Compare{Path: left.tok.text, PathPos: left.tok.pos, Op: op, OpPos: opTok.pos, Values: p.inList(op)}
	}
	right := p.operand(fmt.Sprintf("a value after %q", op.String()))
	contains := op == Contains || op == NotContains
	switch {
	case left.isPath && right.isPath:
		p.fail(right.tok.pos, "expected a value after %q, found the field %s; comparing two fields is not supported", op.String(), right.tok.describe())
	case left.isValue() && right.isValue():
		p.fail(left.tok.pos, "expected a field on one side of %q, found two values", op.String())
	case left.isValue() && contains:
		p.fail(left.tok.pos, "expected a field on the left of %q, found %s", op.String(), left.tok.describe())
	case left.isVar && right.isPath && contains:
		p.fail(left.tok.pos, "expected the field %s on the left of %q, found %s", right.tok.describe(), op.String(), left.describe())
	case left.isValue() || (left.isVar && right.isPath):
		left, right, op = right, left, op.flip()
	}
	return &Compare{Path: left.tok.text, PathPos: left.tok.pos, Op: op, OpPos: opTok.pos, Values: []Literal{right.lit}}
}

func (p *parser) inList(op Op) []Literal {
	if t := p.next(); t.kind != tLParen {
		p.fail(t.pos, `expected "(" after %q, found %s`, op.String(), t.describe())
	}
	var items []Literal
	for {
		v := p.operand(fmt.Sprintf("a value in the %q list", op.String()))
		if v.isPath {
			p.fail(v.tok.pos, "expected a value in the %q list, found the field %s", op.String(), v.tok.describe())
		}
		if v.isVar {
			p.fail(v.tok.pos, "expected a value in the %q list, found the variable %s; an in list holds literals only", op.String(), v.tok.describe())
		}
		if len(items) == MaxInItems {
			p.fail(v.tok.pos, "an %q list holds at most %d values", op.String(), MaxInItems)
		}
		items = append(items, v.lit)
		switch t := p.next(); t.kind {
		case tComma:
		case tRParen:
			return items
		default:
			p.fail(t.pos, `expected "," or ")" in the %q list, found %s`, op.String(), t.describe())
		}
	}
}
