package records

import (
	"reflect"
	"testing"

	"github.com/strata-dev/strata/internal/apperr"
)

func TestCursorRoundTrip(t *testing.T) {
	s := &Service{secret: []byte("k")}
	keys := []any{"a", 2.5, nil, true, "2026-01-02T03:04:05.000Z"}
	tok, err := s.sealCursor(keys, "q1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.openCursor(tok, "q1")
	if err != nil || !reflect.DeepEqual(got, keys) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if _, err := s.openCursor(tok, "q2"); apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("cursor of another query: %v", err)
	}
	other := &Service{secret: []byte("other")}
	if _, err := other.openCursor(tok, "q1"); apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("cursor sealed with another key: %v", err)
	}
}

// FuzzOpenCursor: arbitrary tokens are refused as Invalid, never accepted
// or panicking.
func FuzzOpenCursor(f *testing.F) {
	s := &Service{secret: []byte("k")}
	tok, _ := s.sealCursor([]any{"a", 1.0}, "q")
	f.Add(tok)
	f.Add("")
	f.Add(".")
	f.Add("eyJxIjoicSIsImsiOltdfQ.AAAA")
	f.Fuzz(func(t *testing.T, in string) {
		keys, err := s.openCursor(in, "q")
		if err == nil {
			if in != tok {
				t.Fatalf("accepted a forged cursor %q: %v", in, keys)
			}
			return
		}
		if apperr.KindOf(err) != apperr.Invalid {
			t.Fatalf("error of kind %v: %v", apperr.KindOf(err), err)
		}
	})
}
