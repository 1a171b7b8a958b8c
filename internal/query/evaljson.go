package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// evalJSON is compiler.json in Go, for the JSON value x; nil is a JSON
// null or nothing.
func evalJSON(x any, e *Compare, op Op) bool {
	lit := e.Values[0]
	if lit.Kind == KindNull {
		return (x == nil) == (op == Eq)
	}
	if pop, neg := positive(e, op); neg {
		return !evalJSON(x, e, pop)
	}
	switch op {
	case In:
		for _, l := range e.Values {
			if c, ok := jsonCompare(x, l); ok && c == 0 {
				return true
			}
		}
		return false
	case Contains:
		if items, ok := x.([]any); ok {
			for _, item := range items {
				if c, ok := jsonCompare(item, lit); ok && c == 0 {
					return true
				}
			}
			return false
		}
		s, ok := x.(string)
		return ok && lit.Kind == KindString && containsFold(s, lit.Str)
	}
	c, ok := jsonCompare(x, lit)
	return ok && holds(c, op)
}

// jsonCompare compares the JSON value x with a literal of the same JSON
// type; ok is false for values of other types.
func jsonCompare(x any, lit Literal) (c int, ok bool) {
	switch lit.Kind {
	case KindString:
		if s, ok := x.(string); ok {
			return strings.Compare(s, lit.Str), true
		}
	case KindBool:
		if b, ok := x.(bool); ok && b == lit.Bool {
			return 0, true
		}
	case KindNumber:
		if f, ok := jsonNumber(x); ok {
			return cmpFloat(f, lit.Num), true
		}
	}
	return 0, false
}

func jsonNumber(x any) (float64, bool) {
	switch n := x.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil || errors.Is(err, strconv.ErrRange)
	case float64, float32, int, int64:
		f, err := toFloat(n)
		return f, err == nil
	}
	return 0, false
}

// jsonAt follows path into the JSON value root as the dialect's JSON path
// does: a segment of digits indexes an array; in PostgreSQL it also names
// an object's key, in SQLite it does not. The result is nil where the path
// reaches nothing.
func jsonAt(d sqldb.Dialect, root any, path []string) any {
	x := root
	for _, seg := range path {
		if m, ok := x.(schema.Values); ok {
			x = map[string]any(m)
		}
		switch v := x.(type) {
		case map[string]any:
			if d == sqldb.SQLite && isIndex(seg) {
				return nil
			}
			x = v[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if !isIndex(seg) || err != nil || i >= len(v) {
				return nil
			}
			x = v[i]
		default:
			return nil
		}
	}
	return x
}

// decodeJSON decodes JSON text with numbers as json.Number. Of keys written
// twice in an object the first wins when firstWins is set, else the last,
// as in encoding/json.
func decodeJSON(raw []byte, firstWins bool) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if !firstWins {
		var v any
		err := dec.Decode(&v)
		return v, err
	}
	return decodeValue(dec)
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.(string)]; !dup {
				m[k.(string)] = v
			}
		}
		_, err := dec.Token()
		return m, err
	case json.Delim('['):
		l := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token()
		return l, err
	}
	return tok, nil
}
