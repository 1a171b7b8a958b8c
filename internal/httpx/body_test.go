package httpx

import (
	"bytes"
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

func TestSplitObject(t *testing.T) {
	for _, tc := range []struct {
		body string
		want map[string]string
	}{
		{` { } `, map[string]string{}},
		{`{"a":1,"b":"x,}]","c":[1,{"d":"]}"}],"e":{"f":[]}, "g" : true ,"h":null}`,
			map[string]string{"a": "1", "b": `"x,}]"`, "c": `[1,{"d":"]}"}]`, "e": `{"f":[]}`, "g": "true", "h": "null"}},
		{`{"a":1,"a":2}`, map[string]string{"a": "2"}},                                                 // the last wins, as in the decoder
		{`{"ti\u0074le":"\"q\"","b\\":-1.5e3}`, map[string]string{"title": `"\"q\""`, `b\`: "-1.5e3"}}, // escaped keys decoded
		{"{\"\xff\":1}", map[string]string{"\ufffd": "1"}},                                             // invalid UTF-8 in a key: replaced
	} {
		m, ok := splitObject([]byte(tc.body))
		if !ok || len(m) != len(tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.body, m, ok, tc.want)
			continue
		}
		for k, v := range tc.want {
			if string(m[k]) != v {
				t.Errorf("%s: member %q = %s, want %s", tc.body, k, m[k], v)
			}
		}
	}
	for _, body := range []string{``, `null`, `[]`, `{"a":1}x`, `{"a":}`, `"{}"`} {
		if m, ok := splitObject([]byte(body)); ok {
			t.Errorf("%s: split into %v", body, m)
		}
	}
}

// FuzzDecodeObject: any body is either a JSON object or an Invalid error,
// and the members are what encoding/json decodes.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":`, `[]`, `{"a":"\u0000"}`, `{}{}`, `{"a\"b":[{"c":"]"}],"a":2}`, "{\"\xff\":\"\xfe\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want map[string]json.RawMessage
		werr := json.Unmarshal(body, &want)
		if split, ok := splitObject(body); ok {
			if werr != nil || len(split) != len(want) {
				t.Fatalf("split %q into %q; encoding/json: %q, %v", body, split, want, werr)
			}
			for k, v := range want {
				if sv, ok := split[k]; !ok || !bytes.Equal(sv, v) {
					t.Fatalf("split %q: member %q = %q, encoding/json %q", body, k, sv, v)
				}
			}
		} else if werr == nil && want != nil {
			t.Fatalf("%q is an object to encoding/json (%q) but was not split", body, want)
		}
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

// BenchmarkDecodeObject: a create's body split by DecodeObject, against
// the decoder it falls back to.
func BenchmarkDecodeObject(b *testing.B) {
	body := []byte(`{"title":"Post 12345 about the weather","views":812,"published":true,"author":"0193a0f2-58c1-7c3e-9d2b-3f4e5a6b7c8d",` +
		`"body":"` + strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 4) + `"}`)
	b.Run("split", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeObject(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := decode(body, &m, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
