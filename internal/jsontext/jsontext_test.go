package jsontext

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"unicode/utf8"
)

// FuzzAppendString: a string comes back from the JSON it was written as,
// as it does from encoding/json's, and the bytes are log/slog's.
func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("quote\" back\\ nl\n tab\t ctl\x01\x08\x0c \u2028\u2029 \xff é <&> 12345678")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString([]byte("x"), s)
		if out[0] != 'x' {
			t.Fatalf("AppendString overwrote what b held: %q", out)
		}
		out = out[1:]
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q wrote invalid JSON %s: %v", s, out, err)
		}
		std, _ := json.Marshal(s)
		var want string
		json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q came back as %q, want %q", s, got, want)
		}
		var line bytes.Buffer
		slog.New(slog.NewJSONHandler(&line, &slog.HandlerOptions{ReplaceAttr: dropBuiltins})).Info("", "s", s)
		if want := `{"s":` + string(out) + "}\n"; line.String() != want {
			t.Fatalf("%q: slog wrote %s, AppendString %s", s, line.Bytes(), out)
		}
	})
}

func dropBuiltins(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
		return slog.Attr{}
	}
	return a
}

// FuzzPlain8 holds the eight-byte test to the byte-by-byte one.
func FuzzPlain8(f *testing.F) {
	f.Add(uint64(0x6f6c6c6568206120))
	f.Add(uint64(0x2022205c1f7f8020))
	f.Fuzz(func(t *testing.T, x uint64) {
		want := true
		for i := range 8 {
			c := byte(x >> (8 * i))
			if c >= utf8.RuneSelf || c < 0x20 || c == '"' || c == '\\' {
				want = false
			}
		}
		if got := plain8(x); got != want {
			t.Fatalf("plain8(%#016x) = %v, want %v", x, got, want)
		}
	})
}
