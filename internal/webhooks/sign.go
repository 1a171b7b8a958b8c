package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Signatures follow the Standard Webhooks specification
// (https://www.standardwebhooks.com/): the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", signed with HMAC-SHA256 under
// the secret's bytes (the base64 after "whsec_"), and sent as
// "v1,<base64 of the MAC>" in the webhook-signature header. Receivers can
// verify it with any Standard Webhooks library. The few lines here are
// the whole of the signer, so the reference library is not a dependency;
// the tests check the result with an independent computation.

// SecretPrefix starts every webhook secret.
const SecretPrefix = "whsec_"

// Secret sizes in bytes, as the specification recommends.
const (
	secretBytes    = 24 // generated secrets
	minSecretBytes = 24
	maxSecretBytes = 64
)

// GenerateSecret returns a new secret: "whsec_" and the base64 of 24
// random bytes.
func GenerateSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey returns the key bytes of a secret, checking its form.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("the secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("the secret after %q must be standard base64", SecretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, fmt.Errorf("the secret must encode %d to %d bytes, not %d", minSecretBytes, maxSecretBytes, len(key))
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a message: "v1,"
// and the base64 HMAC-SHA256 of id.timestamp.body under the secret's key.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	return sign(key, id, strconv.FormatInt(timestamp.Unix(), 10), body), nil
}

func sign(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook-signature header (one or more space-separated
// signatures) against a message, as a receiver would; it is here for
// tests and for programs that embed Strata and receive its webhooks. It
// does not check the timestamp's age.
func Verify(secret, id, timestamp, signatures string, body []byte) error {
	key, err := secretKey(secret)
	if err != nil {
		return err
	}
	want := sign(key, id, timestamp, body)
	for _, s := range strings.Fields(signatures) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching v1 signature")
}
