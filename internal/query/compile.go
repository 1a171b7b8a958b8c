package query

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Env is what filters and sorts are compiled against: a dialect, the
// collection being listed and how its table is named in the outer query.
type Env struct {
	Dialect    sqldb.Dialect
	Collection *schema.Collection
	// Alias qualifies the collection's columns, as in r."title". It is
	// written as given, so it must be a plain SQL name chosen by the caller.
	// Empty means the quoted table name.
	Alias string
	// Lookup resolves the targets of relations; a nil result is an unknown
	// collection. A nil Lookup knows no collections.
	Lookup func(name string) *schema.Collection
	// Request gives the values of the variables of a rule; with a nil
	// Request, variables are an error, as in the filters clients send.
	Request *Request
}

// Where type-checks e against the collection and compiles it to an SQL
// boolean expression over the collection's table, adding its values to
// args. A nil e compiles to "". The result binds as one operand of AND.
// Variables are bound to their values in env.Request; a comparison whose
// outcome the values decide compiles to TRUE or FALSE, and a rule that
// they decide entirely compiles to "TRUE" or "FALSE". Errors in the
// filter are *Error values; a request value that cannot be bound is an
// ErrInvalidValue. On any error args is left as it was.
func (env *Env) Where(e Expr, args *sqldb.Args) (string, error) {
	if e == nil {
		return "", nil
	}
	if err := env.check(args, true); err != nil {
		return "", err
	}
	n := len(args.Values)
	c := &compiler{env: env, d: env.Dialect, args: args}
	out, err := c.expr(e, env.root())
	if err != nil {
		args.Values = args.Values[:n]
		return "", err
	}
	if out.logic == Or {
		return "(" + out.sql + ")", nil
	}
	return out.sql, nil
}

// check refuses an Env without a collection and args of another dialect;
// args may be nil where none are needed.
func (env *Env) check(args *sqldb.Args, need bool) error {
	if env.Collection == nil {
		return errors.New("query: env has no collection")
	}
	if args == nil && !need {
		return nil
	}
	if args == nil {
		return errors.New("query: nil args")
	}
	if args.Dialect != env.Dialect {
		return fmt.Errorf("query: args are for %s but the env is for %s", args.Dialect, env.Dialect)
	}
	return nil
}

// scope is a collection whose columns a condition refers to.
type scope struct {
	coll *schema.Collection
	qual string // qualifies its columns: an alias or the quoted table name
	hops int    // relations passed through to reach it
}

func (env *Env) root() scope {
	q := env.Alias
	if q == "" {
		q = env.Dialect.Quote(env.Collection.Name)
	}
	return scope{coll: env.Collection, qual: q}
}

type compiler struct {
	env    *Env
	d      sqldb.Dialect
	args   *sqldb.Args
	nalias int
	// check: only the types of variables are known, not their values.
	check bool
	// bound, when set, keeps what each comparison was bound to, for Eval.
	bound map[*Compare]bound
}

// cond is a compiled boolean expression.
type cond struct {
	sql string
	// nullable: the expression may be NULL, SQL's unknown.
	nullable bool
	// logic is set when sql is a bare chain of AND or OR; anything else is
	// an operand that binds tighter than AND.
	logic LogicOp
	// known: the expression is the constant val, TRUE or FALSE.
	known, val bool
}

func constant(v bool) cond {
	if v {
		return cond{sql: "TRUE", known: true, val: true}
	}
	return cond{sql: "FALSE", known: true}
}

// scratch is a compiler whose SQL is thrown away: it only finds errors.
func (c *compiler) scratch() *compiler {
	return &compiler{env: c.env, d: c.d, args: &sqldb.Args{Dialect: c.d}, check: c.check}
}

// alias returns a fresh table alias.
func (c *compiler) alias(prefix string) string {
	for {
		c.nalias++
		a := prefix + strconv.Itoa(c.nalias)
		if a != c.env.Alias {
			return a
		}
	}
}

func (c *compiler) expr(e Expr, s scope) (cond, error) {
	switch e := e.(type) {
	case *Logical:
		n := len(c.args.Values)
		x, err := c.expr(e.X, s)
		if err != nil {
			return cond{}, err
		}
		y, err := c.expr(e.Y, s)
		if err != nil {
			return cond{}, err
		}
		if x.known || y.known {
			// A constant has no args: either it decides the whole, whose
			// args are then dropped, or the other side is the whole.
			k, other := x, y
			if !x.known {
				k, other = y, x
			}
			if k.val == (e.Op == Or) {
				c.args.Values = c.args.Values[:n]
				return k, nil
			}
			return other, nil
		}
		kw := " AND "
		if e.Op == Or {
			kw = " OR "
		}
		return cond{sql: group(x, e.Op) + kw + group(y, e.Op), nullable: x.nullable || y.nullable, logic: e.Op}, nil
	case *Not:
		x, err := c.expr(e.X, s)
		if err != nil {
			return cond{}, err
		}
		return not(x), nil
	case *Compare:
		return c.compare(s, e)
	}
	return cond{}, fmt.Errorf("query: unknown filter node %T", e)
}

// group parenthesizes x as an operand of a chain of parent.
func group(x cond, parent LogicOp) string {
	if x.logic != 0 && x.logic != parent {
		return "(" + x.sql + ")"
	}
	return x.sql
}

// not is the two-valued negation: NULL (unknown) counts as false, so the
// result is true exactly where x is not.
func not(x cond) cond {
	if x.known {
		return constant(!x.val)
	}
	if x.nullable {
		return cond{sql: "NOT COALESCE(" + x.sql + ", FALSE)"}
	}
	return cond{sql: "NOT (" + x.sql + ")"}
}

var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// splitPath splits a dotted path and checks each segment; the segments are
// inlined into JSON paths, so this check is what keeps them safe.
func splitPath(path string, pos int) ([]string, error) {
	segs := strings.Split(path, ".")
	off := pos
	for _, s := range segs {
		if !segmentRE.MatchString(s) {
			return nil, errorf(off, "invalid field path %q: each segment is letters, digits and _ only", path)
		}
		off += len(s) + 1
	}
	if !isIdentStart(path[0]) {
		return nil, errorf(pos, "invalid field path %q: it must start with a letter or _", path)
	}
	return segs, nil
}

func (c *compiler) compare(s scope, e *Compare) (cond, error) {
	if len(e.Values) == 0 || (len(e.Values) > 1 && e.Op != In && e.Op != NotIn) {
		return cond{}, errorf(e.OpPos, "%q takes one value, found %d", e.Op.String(), len(e.Values))
	}
	if e.Op < Eq || e.Op > NotIn {
		return cond{}, errorf(e.OpPos, "unknown operator %v", e.Op)
	}
	for _, v := range e.Values {
		if v.Kind < KindString || v.Kind > KindVar {
			return cond{}, errorf(v.Pos, "unknown kind of value %d", v.Kind)
		}
		if v.Kind == KindNull && (e.Op != Eq && e.Op != Neq) {
			return cond{}, errorf(v.Pos, "null is compared only with = and !=; found %q", e.Op.String())
		}
		if v.Kind == KindVar && (e.Op == In || e.Op == NotIn) {
			return cond{}, errorf(v.Pos, "expected a value in the %q list, found the variable %q; an in list holds literals only", e.Op.String(), v.Str)
		}
	}
	b, err := c.bind(s, e)
	if err != nil {
		return cond{}, err
	}
	if c.bound != nil {
		c.bound[e] = b
	}
	if b.cmp == nil {
		return constant(b.val), nil
	}
	segs, err := splitPath(b.cmp.Path, b.cmp.PathPos)
	if err != nil {
		return cond{}, err
	}
	return c.at(s, b.cmp, segs, b.cmp.PathPos, b.cmp.Op)
}

// at compiles e with the operator op for the path segs in s; pos is the
// offset of segs[0] in the source.
func (c *compiler) at(s scope, e *Compare, segs []string, pos int, op Op) (cond, error) {
	t, err := c.env.resolve(s, segs, pos)
	if err != nil {
		return cond{}, err
	}
	if t.kind == tRelation {
		return c.relation(s, e, t, pos+len(segs[0])+1, op)
	}
	return c.on(t, e, op)
}

// on compiles e with the operator op for a target that is not a relation.
func (c *compiler) on(t target, e *Compare, op Op) (cond, error) {
	switch t.kind {
	case tList:
		return c.list(t, e, op)
	case tJSON:
		return c.json(t, e, op)
	}
	return c.column(t, e, op)
}

type targetKind int

const (
	tColumn   targetKind = iota // a scalar column
	tList                       // a multiple select or relation
	tJSON                       // a JSON value in a json field or a document
	tRelation                   // a path that continues in a related collection
)

// target is what a path names in a collection.
type target struct {
	kind    targetKind
	name    string           // the field's name, for messages
	col     string           // the qualified column
	typ     schema.FieldType // tColumn and tList
	notNull bool             // the column is never NULL
	jpath   []string         // tJSON: the path inside the column
	field   *schema.Field    // tRelation
	rest    []string         // tRelation: the path in the related collection
	isVar   bool             // a variable's value, compared as a field's
}

// what names the target for messages: field "title", or @request.auth.id.
func (t target) what() string {
	if t.isVar {
		return t.name
	}
	return fmt.Sprintf("field %q", t.name)
}

// is says what the target is, for messages: field "title" is a text field.
func (t target) is() string {
	switch {
	case t.isVar:
		return t.name + " is " + classOfType(t.typ, t.kind == tList).String()
	case t.kind == tList:
		return t.what() + " holds a list of strings"
	case t.kind == tJSON:
		return fmt.Sprintf("%q is a json value", t.name)
	}
	return t.what() + " is " + typeName(t.typ)
}

func (env *Env) resolve(s scope, segs []string, pos int) (target, error) {
	col := func(name string) string { return s.qual + "." + env.Dialect.Quote(name) }
	name := segs[0]
	switch name {
	case schema.FieldID, schema.FieldCreated, schema.FieldUpdated:
		if len(segs) > 1 {
			return target{}, errorf(pos+len(name), "%q has no nested fields", name)
		}
		typ := schema.DateTime
		if name == schema.FieldID {
			typ = schema.Text
		}
		return target{kind: tColumn, name: name, col: col(name), typ: typ, notNull: true}, nil
	}
	if s.coll.Type == schema.Document {
		return target{kind: tJSON, name: strings.Join(segs, "."), col: col(schema.DocumentColumn), jpath: segs}, nil
	}
	f := s.coll.Field(name)
	if f == nil {
		return target{}, errorf(pos, "unknown field %q in collection %q", name, s.coll.Name)
	}
	t := target{name: name, col: col(name), typ: f.Type, field: f}
	switch {
	case f.Type == schema.JSON:
		t.kind, t.name, t.jpath = tJSON, strings.Join(segs, "."), segs[1:]
		return t, nil
	case len(segs) == 1 && f.IsList():
		t.kind = tList
		return t, nil
	case len(segs) == 1:
		t.kind = tColumn
		return t, nil
	case f.Type == schema.Relation:
		t.kind, t.rest = tRelation, segs[1:]
		return t, nil
	}
	return target{}, errorf(pos+len(name), "field %q is %s and has no nested fields; only json and relation fields do", name, typeName(f.Type))
}

// typeName names a field type with its article, for messages.
func typeName(t schema.FieldType) string {
	switch t {
	case schema.Email:
		return "an email field"
	case schema.URL:
		return "a url field"
	}
	return "a " + string(t) + " field"
}

// relation compiles a comparison through a relation field: the related
// records are selected by a subquery with its own alias. A negated operator
// is compiled as the negation of its positive form, so that
// author.name != 'x' holds for records without an author.
func (c *compiler) relation(s scope, e *Compare, t target, pos int, op Op) (cond, error) {
	if s.hops >= MaxHops {
		return cond{}, errorf(e.PathPos, "path %q passes through more than %d relations", e.Path, MaxHops)
	}
	var rel *schema.Collection
	if c.env.Lookup != nil {
		rel = c.env.Lookup(t.field.Collection)
	}
	if rel == nil {
		return cond{}, errorf(e.PathPos, "relation field %q points to unknown collection %q", t.name, t.field.Collection)
	}
	pop, neg := positive(e, op)
	a := c.alias("a")
	inner, err := c.at(scope{coll: rel, qual: a, hops: s.hops + 1}, e, t.rest, pos, pop)
	if err != nil {
		return cond{}, err
	}
	table := c.d.Quote(rel.Name) + " " + a
	id := a + "." + c.d.Quote(schema.FieldID)
	var out cond
	if !t.field.Multiple {
		out = cond{sql: t.col + " IN (SELECT " + id + " FROM " + table + " WHERE " + inner.sql + ")", nullable: true}
	} else {
		out = cond{sql: "EXISTS (SELECT 1 FROM " + table + " WHERE " + id + " IN (" + c.elements(t.col) + ") AND " + inner.sql + ")"}
	}
	if neg {
		return not(out), nil
	}
	return out, nil
}

// elements is a subquery that yields the strings of a JSON array column.
func (c *compiler) elements(col string) string {
	j := c.alias("j")
	if c.d == sqldb.Postgres {
		return "SELECT " + j + ".v FROM jsonb_array_elements_text(" + col + ") AS " + j + "(v)"
	}
	return "SELECT " + j + ".value FROM json_each(" + col + ") AS " + j
}

// positive returns the operator whose negation op is, if it is one.
func positive(e *Compare, op Op) (Op, bool) {
	null := e.Values[0].Kind == KindNull
	switch {
	case op == Eq && null:
		return Neq, true
	case op == Neq && !null:
		return Eq, true
	case op == NotContains:
		return Contains, true
	case op == NotIn:
		return In, true
	}
	return op, false
}
