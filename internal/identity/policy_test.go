package identity

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-dev/strata/internal/apperr"
)

func TestPasswordPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(path, []byte("password123456\n  Qwertyuiop1234 \n\n"), 0o600)
	list, err := LoadBlocklist(path)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{MinPassword: 12, Blocklist: list})
	for pw, code := range map[string]string{
		"short pw":               "weak_password",
		"PASSWORD123456":         "breached_password",
		"qwertyuiop1234":         "breached_password",
		"a fine long passphrase": "",
	} {
		err := s.checkPolicy(pw)
		var ae *apperr.Error
		switch {
		case code == "" && err != nil:
			t.Errorf("%q refused: %v", pw, err)
		case code != "" && (!errors.As(err, &ae) || len(ae.Fields) == 0 || ae.Fields[0].Code != code):
			t.Errorf("%q: %v, want %s", pw, err, code)
		}
	}
	if _, err := LoadBlocklist(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a missing blocklist loaded")
	}
}
