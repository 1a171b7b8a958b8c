package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/strata-dev/strata/internal/apperr"
)

// ReadJSON reads a request body of at most limit bytes that must be JSON.
// It returns the raw bytes; errors are client errors (415, 413, 400).
func ReadJSON(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, apperr.New(apperr.UnsupportedMediaType, "the body must be JSON sent with Content-Type: application/json (got %q)", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apperr.New(apperr.TooLarge, "the body is larger than the limit of %d bytes", mbe.Limit)
		}
		return nil, apperr.Wrap(apperr.Invalid, err, "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, apperr.New(apperr.Invalid, "the body is empty; send a JSON object")
	}
	return body, nil
}

// DecodeObject decodes a JSON object into its members, undecoded. The
// members share body's memory.
func DecodeObject(body []byte) (map[string]json.RawMessage, error) {
	if m, ok := splitObject(body); ok {
		return m, nil
	}
	var m map[string]json.RawMessage
	if err := decode(body, &m, false); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, apperr.New(apperr.Invalid, "the body must be a JSON object, not null")
	}
	return m, nil
}

// DecodeStrict decodes body into v, rejecting keys v does not have.
func DecodeStrict(body []byte, v any) error { return decode(body, v, true) }

func decode(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return apperr.New(apperr.Invalid, "malformed JSON: unexpected data after the top-level value at byte %d", dec.InputOffset())
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return apperr.New(apperr.Invalid, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		if te.Field == "" {
			return apperr.New(apperr.Invalid, "the body must be a JSON object, not %s", te.Value)
		}
		return apperr.New(apperr.Invalid, "%s must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, "malformed JSON: the body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apperr.New(apperr.Invalid, "unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return apperr.Wrap(apperr.Invalid, err, fmt.Sprintf("malformed JSON: %v", err))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// splitObject splits body into its members when it is a valid JSON
// object: json.Valid checks it without allocating, and a valid document
// needs no more than a scan for where each member ends. Decoding into a
// map of json.RawMessage did the same through reflection, validating
// each value again and copying it (4% of a create's CPU). false means
// body is not a valid object; the decoder then says what is wrong with it.
// The result is what the decoder gives: the last of duplicate keys wins,
// escaped keys are decoded, values are their bytes without the space
// around them.
func splitObject(body []byte) (map[string]json.RawMessage, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 8)
	i = skipSpace(body, i+1)
	if body[i] == '}' {
		return m, true
	}
	for {
		end := skipString(body, i)
		key, ok := plainKey(body[i:end])
		if !ok {
			if json.Unmarshal(body[i:end], &key) != nil {
				return nil, false
			}
		}
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		end = skipValue(body, i)
		m[key] = body[i:end:end]
		i = skipSpace(body, end)
		if body[i] == '}' {
			return m, true
		}
		i = skipSpace(body, i+1) // past the comma
	}
}

// plainKey is the text of a JSON string with no escapes and valid UTF-8
// (the decoder replaces invalid UTF-8, so such keys take it).
func plainKey(raw []byte) (string, bool) {
	k := raw[1 : len(raw)-1]
	if bytes.IndexByte(k, '\\') >= 0 || !utf8.Valid(k) {
		return "", false
	}
	return string(k), true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the valid JSON value at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}
