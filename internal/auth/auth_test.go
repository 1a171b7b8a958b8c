package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not carry the parameters", h)
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Errorf("two hashes of one password are equal: no salt")
	}
	ok, rehash, err := CheckPassword(h, "correct horse")
	if !ok || rehash || err != nil {
		t.Errorf("right password: ok=%v rehash=%v err=%v", ok, rehash, err)
	}
	if ok, _, _ := CheckPassword(h, "correct horsE"); ok {
		t.Errorf("wrong password accepted")
	}
	// A hash made with other parameters still verifies and asks for a rehash.
	old := strings.Replace(h, "m=19456,t=2,p=1", "m=8192,t=1,p=1", 1)
	if ok, rehash, _ := CheckPassword(old, "correct horse"); ok || !rehash {
		t.Errorf("edited parameters: ok=%v rehash=%v (the key no longer matches, but the rehash flag must be set)", ok, rehash)
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=x$AAAA$AAAA", "$argon2id$v=19$m=1,t=1,p=1$!!$AAAA"} {
		if ok, _, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v", bad, ok, err)
		}
	}
}

func TestSignerTokens(t *testing.T) {
	dir := t.TempDir()
	s, err := LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "signing_key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	again, err := LoadSigner(dir)
	if err != nil || again.kid != s.kid {
		t.Fatalf("reloaded key differs: %v", err)
	}
	now := time.Now()
	tok, err := s.Issue(Principal{ID: "u1", Role: RoleSuperuser}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := again.Verify(tok, now)
	if err != nil || c.Subject != "u1" || c.Role != RoleSuperuser {
		t.Fatalf("verify: %+v %v", c, err)
	}
	expired, _ := s.Issue(Principal{ID: "u1", Role: RoleSuperuser}, time.Minute, now.Add(-2*time.Hour))
	if _, err := s.Verify(expired, now); err == nil {
		t.Errorf("expired token accepted")
	}
	other, _ := LoadSigner(t.TempDir())
	foreign, _ := other.Issue(Principal{ID: "u1", Role: RoleSuperuser}, time.Hour, now)
	if _, err := s.Verify(foreign, now); err == nil {
		t.Errorf("token of another key accepted")
	}
	parts := strings.Split(tok, ".")
	if _, err := s.Verify(parts[0]+"."+parts[1]+"x."+parts[2], now); err == nil {
		t.Errorf("tampered token accepted")
	}
	// alg=none must never pass.
	if _, err := s.Verify("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."+parts[1]+".", now); err == nil {
		t.Errorf("unsigned token accepted")
	}
	if string(s.Secret("cursor")) == string(s.Secret("other")) {
		t.Errorf("derived secrets do not depend on the purpose")
	}
}

func TestLoadSignerRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "signing_key.pem"), []byte("not pem"), 0o600)
	if _, err := LoadSigner(dir); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("err = %v", err)
	}
}
