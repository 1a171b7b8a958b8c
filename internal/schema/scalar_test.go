package schema

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestDecodeScalars(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`""`, "", true},
		{`"héllo ✓"`, "héllo ✓", true},
		{`"a\"b"`, `a"b`, true},      // escapes: encoding/json
		{`"\u00e9"`, "é", true},      // escapes: encoding/json
		{"\"tab\there\"", "", false}, // a raw control character
		{`"open`, "", false},
		{`12`, "", false},
		{`null`, "", true}, // json.Unmarshal leaves a string alone on null
	} {
		var s string
		if ok := decodeString([]byte(c.raw), &s); ok != c.ok || s != c.want {
			t.Errorf("decodeString(%s) = %q, %v; want %q, %v", c.raw, s, ok, c.want, c.ok)
		}
	}
	for _, c := range []struct {
		raw  string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"12", 12, true}, {"-3.25", -3.25, true}, {"1e3", 1000, true},
		{"2E-2", 0.02, true}, {"1e400", 0, false}, {"01", 0, false}, {"+1", 0, false}, {".5", 0, false},
		{"1.", 0, false}, {"0x10", 0, false}, {"Inf", 0, false}, {"NaN", 0, false}, {`"1"`, 0, false}, {"1_0", 0, false},
	} {
		var n float64
		if ok := decodeNumber([]byte(c.raw), &n); ok != c.ok || n != c.want {
			t.Errorf("decodeNumber(%s) = %v, %v; want %v, %v", c.raw, n, ok, c.want, c.ok)
		}
	}
}

// FuzzDecodeScalars holds the fast paths to encoding/json: a plain string
// is what json.Unmarshal decodes, and isJSONNumber takes exactly JSON's
// numbers.
func FuzzDecodeScalars(f *testing.F) {
	for _, s := range []string{`"plain"`, `"a\"b"`, "\"\xff\"", `"`, `-0.5e+7`, `01`, `1.`, `-`, `0e`, `9`, ` 1`, `1 `, `true`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, ok := plainString(b); ok {
			var want string
			if err := json.Unmarshal(b, &want); err != nil || want != s {
				t.Fatalf("plainString(%q) = %q; json.Unmarshal: %q, %v", b, s, want, err)
			}
		}
		number := len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') &&
			len(bytes.TrimRight(b, " \t\r\n")) == len(b) && json.Valid(b)
		if got := isJSONNumber(b); got != number {
			t.Fatalf("isJSONNumber(%q) = %v, want %v", b, got, number)
		}
		var n, want float64
		ok := decodeNumber(b, &n)
		werr := json.Unmarshal(b, &want)
		if ok != (werr == nil) || ok && n != want {
			t.Fatalf("decodeNumber(%q) = %v, %v; json.Unmarshal: %v, %v", b, n, ok, want, werr)
		}
	})
}
