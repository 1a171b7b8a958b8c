// Package httpx holds what every HTTP handler shares: RFC 9457 problem
// documents, JSON bodies and the middleware chain.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/schema"
)

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type     string              `json:"type"`
	Title    string              `json:"title"`
	Status   int                 `json:"status"`
	Detail   string              `json:"detail,omitempty"`
	Instance string              `json:"instance,omitempty"`
	Errors   []schema.FieldError `json:"errors,omitempty"`
	// Components, on a failed readiness check, is the state of each
	// component.
	Components any `json:"components,omitempty"`
}

type kindInfo struct {
	status int
	slug   string
}

var kinds = map[apperr.Kind]kindInfo{
	apperr.Internal:             {http.StatusInternalServerError, "internal"},
	apperr.Invalid:              {http.StatusBadRequest, "invalid"},
	apperr.Unauthorized:         {http.StatusUnauthorized, "unauthorized"},
	apperr.Forbidden:            {http.StatusForbidden, "forbidden"},
	apperr.NotFound:             {http.StatusNotFound, "not-found"},
	apperr.Conflict:             {http.StatusConflict, "conflict"},
	apperr.PreconditionFailed:   {http.StatusPreconditionFailed, "precondition-failed"},
	apperr.TooLarge:             {http.StatusRequestEntityTooLarge, "too-large"},
	apperr.UnsupportedMediaType: {http.StatusUnsupportedMediaType, "unsupported-media-type"},
	apperr.MethodNotAllowed:     {http.StatusMethodNotAllowed, "method-not-allowed"},
	apperr.Unprocessable:        {http.StatusUnprocessableEntity, "unprocessable"},
	apperr.RateLimited:          {http.StatusTooManyRequests, "rate-limited"},
	apperr.Unavailable:          {http.StatusServiceUnavailable, "unavailable"},
}

// ProblemType is the type URI of problems of a kind.
func ProblemType(slug string) string { return "urn:strata:problem:" + slug }

// ProblemFor builds the problem document for err. Errors without a kind are
// internal: their text is logged, never shown.
func ProblemFor(err error) Problem {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		if errors.Is(err, context.DeadlineExceeded) {
			ae = apperr.New(apperr.Unavailable, "the request ran out of time")
		} else {
			ae = apperr.New(apperr.Internal, "an internal error occurred; it has been logged")
		}
	}
	info, ok := kinds[ae.Kind]
	if !ok {
		info = kinds[apperr.Internal]
	}
	return Problem{
		Type:   ProblemType(info.slug),
		Title:  http.StatusText(info.status),
		Status: info.status,
		Detail: ae.Msg,
		Errors: ae.Fields,
	}
}

// Error writes err as a problem document, logging it when it is internal.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := ProblemFor(err)
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if p.Status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status, "err", err)
	}
	p.Instance = r.URL.Path
	WriteProblem(w, p)
}

// WriteProblem writes p with its status.
func WriteProblem(w http.ResponseWriter, p Problem) {
	body, _ := marshal(p)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	w.Write(body)
}

// marshal encodes v without escaping <, > and &: responses are JSON, not
// HTML, and the escapes make messages hard to read.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// JSON writes v as a JSON response with the status.
func JSON(w http.ResponseWriter, status int, v any) {
	body, err := marshal(v)
	if err != nil {
		WriteProblem(w, ProblemFor(err))
		return
	}
	RawJSON(w, status, body)
}

// RawJSON writes an already encoded JSON body.
func RawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(status)
	w.Write(body)
}
