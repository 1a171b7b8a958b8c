package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// TestSign checks the signer against a computation written out here, on
// the Standard Webhooks example secret.
func TestSign(t *testing.T) {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	id, ts, body := "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)
	got, err := Sign(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + ".1614265330." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	// The value the specification's reference libraries produce for
	// this example.
	if got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Errorf("Sign = %q, not the reference value", got)
	}
	if err := Verify(secret, id, "1614265330", "v1,bogus "+got, body); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := Verify(secret, id, "1614265331", got, body); err == nil {
		t.Error("Verify accepted another timestamp")
	}
}

func TestSecrets(t *testing.T) {
	s := GenerateSecret()
	key, err := secretKey(s)
	if err != nil || len(key) != 24 || !strings.HasPrefix(s, SecretPrefix) {
		t.Fatalf("GenerateSecret() = %q: %v", s, err)
	}
	if GenerateSecret() == s {
		t.Error("two secrets alike")
	}
	for _, bad := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ=",
		SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 65))} {
		if _, err := secretKey(bad); err == nil {
			t.Errorf("secret %q accepted", bad)
		}
	}
}
