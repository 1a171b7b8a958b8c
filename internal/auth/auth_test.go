package auth

import (
	"encoding/base64"
	"encoding/json"
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
	files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(files) != 1 {
		t.Fatalf("key files: %v", files)
	}
	for _, f := range append(files, filepath.Join(dir, "secret")) {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	again, err := LoadSigner(dir)
	if err != nil || again.current().kid != s.current().kid || string(again.Secret("x")) != string(s.Secret("x")) {
		t.Fatalf("reloaded key or secret differs: %v", err)
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
	if _, err := again.Verify(tok, now.Add(2*time.Hour)); err == nil {
		t.Errorf("a verified (cached) token outlived its expiry")
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

func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	server, err := LoadSigner(dir) // a running server
	if err != nil {
		t.Fatal(err)
	}
	// A server looks for keys removed by another process at most every
	// recheck (a second by default), not at every request.
	server.recheck = 20 * time.Millisecond
	now := time.Now()
	p := Principal{ID: "u1", Role: RoleUser}
	old, _ := server.Issue(p, time.Hour, now)
	kid, removed, err := Rotate(dir, now, 2*time.Hour) // strata keys rotate, another process
	if err != nil || len(removed) != 0 {
		t.Fatalf("rotate: %v %v", removed, err)
	}
	if _, err := server.Verify(old, now); err != nil {
		t.Errorf("a token of the old key stopped working after rotation: %v", err)
	}
	fresh, _ := server.Issue(p, time.Hour, now)
	if c, err := server.Verify(fresh, now); err != nil || headerKid(t, fresh) != kid {
		t.Errorf("new tokens are not signed with the new key %s: %v", kid, c)
	}
	if n := len(server.JWKS()["keys"]); n != 2 {
		t.Errorf("JWKS has %d keys, want 2", n)
	}
	// Once the old key's tokens have all expired, the next rotation drops it.
	later := now.Add(3 * time.Hour)
	_, removed, err = Rotate(dir, later, 2*time.Hour)
	if err != nil || len(removed) != 1 || removed[0] != headerKid(t, old) {
		t.Fatalf("second rotate removed %v, %v", removed, err)
	}
	time.Sleep(server.recheck + 5*time.Millisecond)
	if _, err := server.Verify(old, now); err == nil {
		t.Errorf("a token of a removed key still verifies after %v", server.recheck)
	}
	if _, err := server.Verify(fresh, now); err != nil {
		t.Errorf("a token of a kept key stopped working: %v", err)
	}
}

func headerKid(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.Unmarshal(b, &h)
	kid, _ := h["kid"].(string)
	return kid
}

func TestLoadSignerRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "keys"), 0o700)
	os.WriteFile(filepath.Join(dir, "keys", "00000000000000000001.pem"), []byte("not pem"), 0o600)
	if _, err := LoadSigner(dir); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("err = %v", err)
	}
}
