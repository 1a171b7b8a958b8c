package query

import (
	"errors"
	"strings"
	"testing"
)

func TestCursor(t *testing.T) {
	secret := []byte("k")
	tok, err := SealCursor(secret, "q1", []any{"abc", 42, nil})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := OpenCursor(secret, tok, "q1")
	if err != nil || len(keys) != 3 || keys[0] != "abc" || keys[1] != float64(42) || keys[2] != nil {
		t.Fatalf("open: %v %v", keys, err)
	}
	if _, err := OpenCursor(secret, tok, "q2"); !errors.Is(err, ErrCursorQuery) {
		t.Errorf("another query: %v", err)
	}
	if _, err := OpenCursor([]byte("other"), tok, "q1"); !errors.Is(err, ErrBadCursor) {
		t.Errorf("another secret: %v", err)
	}
	body, sig, _ := strings.Cut(tok, ".")
	for _, bad := range []string{"", "x", body, body + ".", "." + sig, body[:len(body)-1] + "A." + sig, body + "." + sig + "A"} {
		if _, err := OpenCursor(secret, bad, "q1"); !errors.Is(err, ErrBadCursor) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzOpenCursor: any token either opens to what was sealed or fails with
// ErrBadCursor; nothing panics.
func FuzzOpenCursor(f *testing.F) {
	tok, _ := SealCursor([]byte("k"), "q", []any{"a", 1.5})
	f.Add(tok)
	f.Add("e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := OpenCursor([]byte("k"), s, "q")
		if err != nil {
			if !errors.Is(err, ErrBadCursor) && !errors.Is(err, ErrCursorQuery) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if s != tok || len(keys) != 2 {
			t.Fatalf("a forged cursor %q opened to %v", s, keys)
		}
	})
}
