package auth

import (
	"testing"
	"time"
)

// BenchmarkHashPassword is the deliberate cost of a login (argon2id, 19 MiB,
// 2 passes).
func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashPassword("correct horse battery"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is what every authenticated request pays for its token.
func BenchmarkVerify(b *testing.B) {
	s, err := LoadSigner(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tok, _ := s.Issue(Principal{ID: "u1", Role: RoleUser, Collection: "members", SessionID: "s1"}, time.Hour, now)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, now); err != nil {
			b.Fatal(err)
		}
	}
}
