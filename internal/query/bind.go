package query

import (
	"errors"

	"github.com/strata-dev/strata/internal/schema"
)

// bound is a comparison with its variables replaced by their values: the
// constant val when cmp is nil, else cmp, a comparison of a field path with
// literals, which compiles and evaluates as any other.
type bound struct {
	cmp *Compare
	val bool
}

// bind binds the variables of e. A comparison with a variable has the
// meaning of the comparison with its value, with these rules where a value
// is null: x = @v and the order operators are false, and so is x ~ @v;
// x != @v is x != null; x !~ @v is true. The literal null alone tests for
// null: with @v null, x = @v is false even where x is null.
func (c *compiler) bind(s scope, e *Compare) (bound, error) {
	if isVar(e.Path) {
		return c.bindVar(e)
	}
	if e.Values[0].Kind != KindVar {
		return bound{cmp: e}, nil
	}
	segs, err := splitPath(e.Path, e.PathPos)
	if err != nil {
		return bound{}, err
	}
	v, err := c.variable(e.Values[0].Str, e.Values[0].Pos)
	if err != nil {
		return bound{}, err
	}
	if v.class == cList || v.class == cJSON {
		return bound{}, errorf(v.pos, "%s is %s; it is compared with values and other variables, not with fields", v.name, v.class)
	}
	with := func(lit Literal, op Op) *Compare {
		return &Compare{Path: e.Path, PathPos: e.PathPos, Op: op, OpPos: e.OpPos, Values: []Literal{lit}}
	}
	if v.class != cNone {
		if t, err := c.env.finalTarget(s, segs, e.PathPos); err == nil {
			if err := fits(t, v); err != nil {
				return bound{}, err
			}
		}
		if v.val != nil {
			return bound{cmp: with(v.literal(), e.Op)}, nil
		}
		// Null, or not known: check the comparison with a stand-in.
		if _, err := c.scratch().at(s, with(v.literal(), e.Op), segs, e.PathPos, e.Op); err != nil {
			return bound{}, err
		}
	}
	null := with(Literal{Kind: KindNull, Pos: v.pos, from: v.name}, Neq)
	if v.class == cNone {
		// No type to check: the path must still name something.
		if _, err := c.scratch().at(s, null, segs, e.PathPos, Neq); err != nil {
			return bound{}, err
		}
	}
	switch e.Op {
	case Neq:
		return bound{cmp: null}, nil
	case NotContains:
		return bound{val: true}, nil
	}
	return bound{val: false}, nil
}

// bindVar binds a comparison whose left side is a variable: its outcome
// is known from the values, so it is a constant.
func (c *compiler) bindVar(e *Compare) (bound, error) {
	v, err := c.variable(e.Path, e.PathPos)
	if err != nil {
		return bound{}, err
	}
	op, vals := e.Op, e.Values
	if vals[0].Kind == KindVar {
		w, err := c.variable(vals[0].Str, vals[0].Pos)
		if err != nil {
			return bound{}, err
		}
		if w.class == cJSON && v.class != cJSON && op != Contains && op != NotContains {
			v, w, op = w, v, op.flip()
		}
		if w.class != cNone && !w.scalar() {
			return bound{}, errorf(w.pos, "%s is %s; on the right of %q, a variable is text, a number, a bool or a datetime", w.name, w.class, op.String())
		}
		if v.class != cNone && w.class != cNone {
			if err := fits(v.target(), w); err != nil {
				return bound{}, err
			}
		}
		if !w.known || w.val != nil {
			vals = []Literal{w.literal()}
		} else {
			// A null on the right: as for a field, != is != null.
			if w.class != cNone {
				if err := c.checkVar(v, e, op, []Literal{w.literal()}); err != nil {
					return bound{}, err
				}
			}
			switch op {
			case Neq:
				vals = []Literal{{Kind: KindNull, Pos: w.pos, from: w.name}}
			case NotContains:
				return bound{val: true}, nil
			default:
				return bound{val: false}, nil
			}
		}
	}
	if err := c.checkVar(v, e, op, vals); err != nil {
		return bound{}, err
	}
	if !v.known {
		return bound{}, nil
	}
	cmp := &Compare{Path: e.Path, PathPos: e.PathPos, Op: op, OpPos: e.OpPos, Values: vals}
	ok, err := evalValue(v.target(), v.val, cmp, op)
	return bound{val: ok}, err
}

// checkVar type-checks the comparison of v by op with vals, as that of a
// field of v's type.
func (c *compiler) checkVar(v *variable, e *Compare, op Op, vals []Literal) error {
	if v.class == cNone {
		return nil
	}
	cmp := &Compare{Path: e.Path, PathPos: e.PathPos, Op: op, OpPos: e.OpPos, Values: vals}
	_, err := c.scratch().on(v.target(), cmp, op)
	return err
}

// fits checks that values of v's class compare with what t holds.
func fits(t target, v *variable) error {
	ok := false
	want := ""
	switch t.kind {
	case tList:
		ok, want = v.class == cText, "text"
	case tJSON:
		ok, want = v.class == cText || v.class == cNumber || v.class == cBool, "text, a number or a bool"
	default:
		k := classOfType(t.typ, false)
		ok, want = v.class == k, k.String()
	}
	if ok {
		return nil
	}
	return errorf(v.pos, "%s; expected %s, found %s, which is %s", t.is(), want, v.name, v.class)
}

// finalTarget resolves segs through relations to what they name at the
// end. Its errors are those of the compiler, which reports them.
func (env *Env) finalTarget(s scope, segs []string, pos int) (target, error) {
	for {
		t, err := env.resolve(s, segs, pos)
		if err != nil || t.kind != tRelation {
			return t, err
		}
		var rel *schema.Collection
		if env.Lookup != nil {
			rel = env.Lookup(t.field.Collection)
		}
		if rel == nil || s.hops >= MaxHops {
			return target{}, errors.New("unresolved")
		}
		pos += len(segs[0]) + 1
		s, segs = scope{coll: rel, qual: "x", hops: s.hops + 1}, t.rest
	}
}
