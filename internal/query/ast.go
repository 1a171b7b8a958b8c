package query

import (
	"strconv"
	"strings"
)

// Expr is a node of a parsed filter: a *Logical, a *Not or a *Compare.
type Expr interface {
	// String writes the node back as filter source, with parentheses
	// around every operand of && and || that joins by the other operator
	// and around the operand of !.
	String() string
	node()
}

// LogicOp is && or ||.
type LogicOp int

// The logical operators.
const (
	And LogicOp = iota + 1
	Or
)

// String returns "&&" or "||".
func (op LogicOp) String() string {
	if op == Or {
		return "||"
	}
	return "&&"
}

// Logical is X && Y or X || Y.
type Logical struct {
	Op   LogicOp
	X, Y Expr
}

// Not is !X.
type Not struct {
	Pos int // of the "!"
	X   Expr
}

// Op is a comparison operator.
type Op int

// The comparison operators.
const (
	Eq          Op = iota + 1 // =
	Neq                       // !=
	Gt                        // >
	Gte                       // >=
	Lt                        // <
	Lte                       // <=
	Contains                  // ~
	NotContains               // !~
	In                        // in (...)
	NotIn                     // not in (...)
)

var opNames = [...]string{Eq: "=", Neq: "!=", Gt: ">", Gte: ">=", Lt: "<", Lte: "<=",
	Contains: "~", NotContains: "!~", In: "in", NotIn: "not in"}

// String returns the operator as a filter writes it.
func (op Op) String() string {
	if op > 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return "Op(" + strconv.Itoa(int(op)) + ")"
}

// ordered reports whether op compares by order.
func (op Op) ordered() bool { return op == Gt || op == Gte || op == Lt || op == Lte }

// flip is the operator that gives the same result with its sides swapped.
func (op Op) flip() Op {
	switch op {
	case Gt:
		return Lt
	case Gte:
		return Lte
	case Lt:
		return Gt
	case Lte:
		return Gte
	}
	return op
}

// Compare compares its left side, a field path or a variable, with a value
// or with the values of an in list.
type Compare struct {
	// Path is dotted: "title", "author.name", "meta.a.b"; a variable starts
	// with @: "@request.auth.id".
	Path    string
	PathPos int
	Op      Op
	OpPos   int
	// Values holds one value, a literal or a variable, or the literals of
	// an in list.
	Values []Literal
}

// Kind is the type of a literal.
type Kind int

// The kinds of literal.
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool
	KindNull
	// KindVar is a variable such as @request.auth.id, whose value is known
	// when a request runs; Str holds its name with the @.
	KindVar
)

// Literal is a value written in a filter: a literal or a variable.
type Literal struct {
	Kind Kind
	Pos  int
	Str  string  // KindString; KindVar: the name, "@request.auth.id"
	Num  float64 // KindNumber
	Bool bool    // KindBool

	// from names the variable whose value a literal holds after binding,
	// for messages.
	from string
}

// isVar reports whether a Compare's Path names a variable.
func isVar(path string) bool { return strings.HasPrefix(path, "@") }

// source is how messages name the value: as written in the filter.
func (l Literal) source() string {
	if l.from != "" {
		return l.from
	}
	return l.String()
}

// String writes the literal as filter source.
func (l Literal) String() string {
	switch l.Kind {
	case KindString:
		r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
		return "'" + r.Replace(l.Str) + "'"
	case KindNumber:
		return strconv.FormatFloat(l.Num, 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(l.Bool)
	case KindVar:
		return l.Str
	}
	return "null"
}

func (*Logical) node() {}
func (*Not) node()     {}
func (*Compare) node() {}

// String writes the expression as filter source.
func (e *Logical) String() string {
	side := func(x Expr) string {
		if l, ok := x.(*Logical); ok && l.Op != e.Op {
			return "(" + x.String() + ")"
		}
		return x.String()
	}
	return side(e.X) + " " + e.Op.String() + " " + side(e.Y)
}

// String writes the expression as filter source.
func (e *Not) String() string { return "!(" + e.X.String() + ")" }

// String writes the comparison as filter source.
func (e *Compare) String() string {
	if e.Op == In || e.Op == NotIn {
		items := make([]string, len(e.Values))
		for i, v := range e.Values {
			items[i] = v.String()
		}
		return e.Path + " " + e.Op.String() + " (" + strings.Join(items, ", ") + ")"
	}
	return e.Path + " " + e.Op.String() + " " + e.Values[0].String()
}
