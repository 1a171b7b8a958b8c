package query

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// Errors of OpenCursor.
var (
	// ErrBadCursor: the cursor was not made by SealCursor with this secret,
	// or was altered.
	ErrBadCursor = errors.New("query: the cursor is not valid")
	// ErrCursorQuery: the cursor belongs to a list with another query.
	ErrCursorQuery = errors.New("query: the cursor belongs to another query")
)

type sealed struct {
	Query string `json:"q"`
	Keys  []any  `json:"k"`
}

// SealCursor encodes the key values of the last row of a page, for After,
// with a MAC under secret, so that a client can neither forge nor alter
// them. qhash names the query (filter, sort, ...) the cursor continues.
func SealCursor(secret []byte, qhash string, keys []any) (string, error) {
	body, err := json.Marshal(sealed{Query: qhash, Keys: keys})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(cursorMAC(secret, body)), nil
}

// OpenCursor checks a cursor made by SealCursor and returns its key
// values, numbers as float64. It fails with ErrBadCursor or, for a cursor
// of another query, ErrCursorQuery.
func OpenCursor(secret []byte, tok, qhash string) ([]any, error) {
	b64, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, ErrBadCursor
	}
	body, err1 := base64.RawURLEncoding.Strict().DecodeString(b64)
	got, err2 := base64.RawURLEncoding.Strict().DecodeString(sig)
	// The decoder skips line breaks: only the canonical spelling of a
	// cursor is one, so that a token opens only as it was sealed.
	if err1 != nil || err2 != nil || strings.ContainsAny(tok, "\r\n") || !hmac.Equal(got, cursorMAC(secret, body)) {
		return nil, ErrBadCursor
	}
	var c sealed
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, ErrBadCursor
	}
	if c.Query != qhash {
		return nil, ErrCursorQuery
	}
	for i, v := range c.Keys {
		if n, ok := v.(json.Number); ok {
			f, err := n.Float64()
			if err != nil {
				return nil, ErrBadCursor
			}
			c.Keys[i] = f
		}
	}
	return c.Keys, nil
}

func cursorMAC(secret, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return mac.Sum(nil)[:16]
}
