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

// DecodeObject decodes a JSON object into its members, undecoded.
func DecodeObject(body []byte) (map[string]json.RawMessage, error) {
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
