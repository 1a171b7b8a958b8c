package httpx

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/apperr"
)

func TestDecodeObject(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"a":1}`, ""},
		{`{"a":`, "malformed JSON"},
		{`[1]`, "must be a JSON object"},
		{`null`, "must be a JSON object"},
		{`"x"`, "must be a JSON object"},
		{`{} x`, "after the top-level value"},
		{`{"a":1}{"b":2}`, "after the top-level value"},
	} {
		_, err := DecodeObject([]byte(tc.body))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
			continue
		}
		if apperr.KindOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want Invalid with %q", tc.body, err, tc.want)
		}
	}
}

// FuzzDecodeObject: any body is either a JSON object or an Invalid error.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":`, `[]`, `{"a":"\u0000"}`, `{}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := DecodeObject(body)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid {
				t.Fatalf("error of kind %v: %v", apperr.KindOf(err), err)
			}
			return
		}
		if m == nil {
			t.Fatal("nil map without error")
		}
		for k, v := range m {
			if !json.Valid(v) {
				t.Fatalf("member %q is not valid JSON: %s", k, v)
			}
		}
	})
}
