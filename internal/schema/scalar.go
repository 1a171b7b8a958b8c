package schema

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// A field's value in a request body is almost always a plain string, a
// number or a boolean. decodeString and decodeNumber read those without
// encoding/json, which validates the value again and decodes it through
// reflection (2% of a create's CPU); anything else takes encoding/json,
// so the result is always what json.Unmarshal gives.

// decodeString decodes a JSON string into s; false when raw is not one.
func decodeString(raw []byte, s *string) bool {
	if v, ok := plainString(raw); ok {
		*s = v
		return true
	}
	return json.Unmarshal(raw, s) == nil
}

// decodeNumber decodes a JSON number into n; false when raw is not one
// or is out of float64's range.
func decodeNumber(raw []byte, n *float64) bool {
	if isJSONNumber(raw) {
		v, err := strconv.ParseFloat(string(raw), 64)
		if err == nil {
			*n = v
		}
		return err == nil
	}
	return json.Unmarshal(raw, n) == nil
}

// plainString returns the text of raw when raw is a JSON string without
// escapes, control characters or invalid UTF-8: its bytes between the
// quotes are the text.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// isJSONNumber reports whether raw is exactly a number of JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. strconv.ParseFloat
// alone would take more ("+1", ".5", "0x1p3", "Inf", "1_0" is refused but
// "01" is not).
func isJSONNumber(raw []byte) bool {
	i, n := 0, len(raw)
	digits := func() bool {
		start := i
		for i < n && raw[i] >= '0' && raw[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < n && raw[i] == '-' {
		i++
	}
	switch {
	case i < n && raw[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < n && raw[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < n && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < n && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == n
}
