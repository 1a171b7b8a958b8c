package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// Request holds the values of the @request variables and @now for one
// request. A value that is missing is null.
type Request struct {
	// Auth is nil for an anonymous caller. Its keys are "id", "collection"
	// (the name of the caller's auth collection) and the fields of the
	// caller's record, with Go values as in schema.Values.
	Auth map[string]any
	// AuthSchema is the caller's auth collection, which types
	// @request.auth.<field>. When it is nil only @request.auth.id and
	// @request.auth.collection are known; an anonymous caller's other
	// fields are then nulls of no type, whose comparisons are not
	// type-checked.
	AuthSchema *schema.Collection
	// Body holds the values the request body gives, by field name, as
	// schema.Values holds them; nil when there is no body.
	Body map[string]any
	// Query holds the query parameters.
	Query map[string]string
	// Method is GET, POST, PATCH, PUT or DELETE; empty is null.
	Method string
	// Now is the value of @now, kept to the millisecond. It must be set
	// when a rule uses @now.
	Now time.Time
}

// ErrInvalidValue is returned, wrapped, when a request value cannot be
// compared: text that is not valid UTF-8 or holds a NUL character. It
// is the client's fault, unlike an *Error, which is the rule's.
var ErrInvalidValue = errors.New("query: invalid request value")

// CheckRule type-checks a collection's access rule when it is saved, when
// no request is known: it parses src and checks its fields against c, the
// relations they pass through against lookup, and @request.auth.<field>
// against auth, the auth collection of the callers the rule is written
// for. With auth nil, only @request.auth.id and @request.auth.collection
// may be used. A blank rule is valid. Errors are *Error values.
func CheckRule(src string, c *schema.Collection, lookup func(string) *schema.Collection, auth *schema.Collection) error {
	e, err := Parse(src)
	if err != nil {
		return err
	}
	env := &Env{Dialect: sqldb.SQLite, Collection: c, Lookup: lookup, Request: &Request{AuthSchema: auth}}
	return env.Check(e)
}

// Check type-checks e as Where does, without writing SQL and without the
// values of variables: env.Request serves only for its AuthSchema, which
// must be set for @request.auth.<field> other than id and collection.
// With a nil Request, variables are an error. Errors in e are *Error
// values.
func (env *Env) Check(e Expr) error {
	if e == nil {
		return nil
	}
	if err := env.check(nil, false); err != nil {
		return err
	}
	c := &compiler{env: env, d: env.Dialect, args: &sqldb.Args{Dialect: env.Dialect}, check: true}
	_, err := c.expr(e, env.root())
	return err
}

// class groups the types of variables by how their values compare.
type class int

const (
	cNone   class = iota // a null of no known type
	cText                // string
	cNumber              // float64
	cBool                // bool
	cTime                // time.Time
	cList                // []string, never empty (an empty list is null)
	cJSON                // a decoded JSON value
)

var classNames = [...]string{cNone: "null", cText: "text", cNumber: "a number", cBool: "a bool",
	cTime: "a datetime", cList: "a list", cJSON: "json"}

func (k class) String() string { return classNames[k] }

// classOfType is the class of the values of a field of type t.
func classOfType(t schema.FieldType, list bool) class {
	switch {
	case list:
		return cList
	case t == schema.Number:
		return cNumber
	case t == schema.Bool:
		return cBool
	case t == schema.DateTime:
		return cTime
	case t == schema.JSON:
		return cJSON
	}
	return cText
}

// variable is a resolved @ name and, outside Check, its value.
type variable struct {
	name  string // as written: "@request.auth.id"
	pos   int
	typ   schema.FieldType
	class class
	val   any  // as class says; nil is null
	known bool // the value is known: false in Check
}

// scalar reports whether values of v's class are written as literals.
func (v *variable) scalar() bool {
	return v.class == cText || v.class == cNumber || v.class == cBool || v.class == cTime
}

// target is v's value seen as a field's, to be compared as one.
func (v *variable) target() target {
	t := target{kind: tColumn, name: v.name, col: "NULL", typ: v.typ, isVar: true}
	switch v.class {
	case cList:
		t.kind = tList
	case cJSON:
		t.kind = tJSON
	}
	return t
}

// standIn is a time that stands in for a datetime not known yet.
var standIn = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// literal is v's value as a literal, or a literal of its class standing
// in for a value that is null or not known. v is scalar.
func (v *variable) literal() Literal {
	l := Literal{Kind: KindString, Pos: v.pos, from: v.name}
	switch x := v.val.(type) {
	case string:
		l.Str = x
	case float64:
		l.Kind, l.Num = KindNumber, x
	case bool:
		l.Kind, l.Bool = KindBool, x
	case time.Time:
		l.Str = schema.FormatTime(x)
	case nil:
		switch v.class {
		case cNumber:
			l.Kind = KindNumber
		case cBool:
			l.Kind = KindBool
		case cTime:
			l.Str = schema.FormatTime(standIn)
		}
	}
	return l
}

const varList = "@request.auth.id, @request.auth.collection, @request.auth.<field>, @request.body.<field>, @request.query.<name>, @request.method and @now"

// variable resolves the variable name at pos: its type, and its value
// unless only types are checked.
func (c *compiler) variable(name string, pos int) (*variable, error) {
	env := c.env
	if env.Request == nil {
		return nil, errorf(pos, "%s: request variables are only allowed in rules", name)
	}
	segs, err := splitPath(name[1:], pos+1)
	if err != nil {
		return nil, err
	}
	r := env.Request
	v := &variable{name: name, pos: pos, typ: schema.Text, class: cText, known: !c.check}
	// want checks that the path has n segments, the last naming what.
	want := func(n int, what string) error {
		if len(segs) < n {
			return errorf(pos+len(name), "expected a name after %s, as in %s.%s", name, name, what)
		}
		if len(segs) > n {
			head := "@" + strings.Join(segs[:n], ".")
			return errorf(pos+len(head), "%s has no nested fields", head)
		}
		return nil
	}
	var raw any
	switch {
	case segs[0] == "now":
		if err := want(1, ""); err != nil {
			return nil, err
		}
		v.typ, v.class = schema.DateTime, cTime
		if v.known && r.Now.IsZero() {
			return nil, errors.New("query: the rule uses @now but Request.Now is not set")
		}
		raw = r.Now
	case segs[0] != "request" || len(segs) < 2:
		return nil, errorf(pos, "unknown variable %q; the variables are %s", name, varList)
	case segs[1] == "method":
		if err := want(2, ""); err != nil {
			return nil, err
		}
		if r.Method != "" {
			raw = r.Method
		}
	case segs[1] == "query":
		if err := want(3, "<name>"); err != nil {
			return nil, err
		}
		if q, ok := r.Query[segs[2]]; ok {
			raw = q
		}
	case segs[1] == "auth":
		if err := want(3, "<field>"); err != nil {
			return nil, err
		}
		if err := authType(v, r, segs[2], pos+len("@request.auth."), c.check); err != nil {
			return nil, err
		}
		raw = r.Auth[segs[2]]
	case segs[1] == "body":
		if err := want(3, "<field>"); err != nil {
			return nil, err
		}
		f := segs[2]
		if env.Collection.Type == schema.Document {
			v.typ, v.class = schema.JSON, cJSON
		} else if fd := env.Collection.Field(f); fd != nil {
			v.typ, v.class = fd.Type, classOfType(fd.Type, fd.IsList())
		} else {
			return nil, errorf(pos+len("@request.body."), "unknown field %q in collection %q", f, env.Collection.Name)
		}
		raw = r.Body[f]
	default:
		return nil, errorf(pos, "unknown variable %q; the variables are %s", name, varList)
	}
	if !v.known {
		return v, nil
	}
	val, err := value(v, raw)
	if err != nil {
		return nil, err
	}
	v.val = val
	return v, nil
}

// authType types @request.auth.<f>; pos is the offset of f.
func authType(v *variable, r *Request, f string, pos int, check bool) error {
	if f == "id" || f == "collection" {
		return nil
	}
	if r.AuthSchema == nil {
		if r.Auth == nil && !check {
			v.typ, v.class = "", cNone // anonymous: null, of no known type
			return nil
		}
		return errorf(pos, "%s needs the caller's auth collection; without it only @request.auth.id and @request.auth.collection are known", v.name)
	}
	fd := r.AuthSchema.Field(f)
	if fd == nil {
		return errorf(pos, "unknown field %q in auth collection %q", f, r.AuthSchema.Name)
	}
	v.typ, v.class = fd.Type, classOfType(fd.Type, fd.IsList())
	return nil
}

// value checks a request value x against v's class and returns it as the
// class holds it.
func value(v *variable, x any) (any, error) {
	if x == nil {
		return nil, nil
	}
	bad := func() (any, error) {
		return nil, fmt.Errorf("query: %s holds %T, not %s", v.name, x, v.class)
	}
	switch v.class {
	case cNone:
		return nil, nil
	case cText:
		s, ok := x.(string)
		if !ok {
			return bad()
		}
		return s, checkText(v, s)
	case cNumber:
		f, err := toFloat(x)
		if err != nil {
			return nil, fmt.Errorf("query: %s: %w", v.name, err)
		}
		return f, nil
	case cBool:
		b, ok := x.(bool)
		if !ok {
			return bad()
		}
		return b, nil
	case cTime:
		switch t := x.(type) {
		case time.Time:
			if t.IsZero() {
				return nil, nil
			}
			return t.UTC().Truncate(time.Millisecond), nil
		case string:
			tm, err := schema.ParseTime(t)
			if err != nil {
				return nil, fmt.Errorf("query: %s: %w", v.name, err)
			}
			return tm, nil
		}
		return bad()
	case cList:
		var list []string
		switch l := x.(type) {
		case []string:
			list = l
		case []any:
			for _, item := range l {
				s, ok := item.(string)
				if !ok {
					return bad()
				}
				list = append(list, s)
			}
		default:
			return bad()
		}
		for _, s := range list {
			if err := checkText(v, s); err != nil {
				return nil, err
			}
		}
		if len(list) == 0 {
			return nil, nil
		}
		return list, nil
	}
	return jsonGo(x, false)
}

func checkText(v *variable, s string) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return fmt.Errorf("%w: %s is not valid UTF-8 text without NUL characters", ErrInvalidValue, v.name)
	}
	return nil
}

// jsonGo turns a JSON value held in Go, raw or decoded, into what JSON
// decodes to with numbers kept as json.Number.
func jsonGo(x any, firstKeyWins bool) (any, error) {
	switch x := x.(type) {
	case json.RawMessage:
		return decodeJSON(x, firstKeyWins)
	case []byte:
		return decodeJSON(x, firstKeyWins)
	case schema.Values:
		return map[string]any(x), nil
	}
	return x, nil
}
