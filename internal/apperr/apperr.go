// Package apperr defines the errors that reach clients. Inside Strata an
// error carries a Kind; at the edge one function turns the kind into a
// status and a problem document, and the message a client sees is the one
// chosen here, never an internal error's text.
package apperr

import (
	"errors"
	"fmt"

	"github.com/strata-dev/strata/internal/schema"
)

// Kind classifies an error for clients.
type Kind int

const (
	Internal Kind = iota
	Invalid
	Unauthorized
	Forbidden
	NotFound
	Conflict
	PreconditionFailed
	TooLarge
	UnsupportedMediaType
	MethodNotAllowed
	Unprocessable
	RateLimited
	Unavailable
)

// Error is an error safe to show to a client.
type Error struct {
	Kind Kind
	// Msg is the detail shown to the client.
	Msg string
	// Fields lists problems with individual fields of the request.
	Fields []schema.FieldError
	// Err is the cause, for logs; never shown.
	Err error
	// RetryAfter, in seconds, tells a rate-limited client when to retry.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error of kind with a formatted message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind with message msg and cause err.
func Wrap(kind Kind, err error, msg string) *Error {
	return &Error{Kind: kind, Msg: msg, Err: err}
}

// FromValidation turns a schema validation error into an Invalid error.
func FromValidation(err error, msg string) error {
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		return &Error{Kind: Invalid, Msg: msg, Fields: ve.Errors, Err: err}
	}
	return err
}

// KindOf returns the kind of err: that of the first *Error in its chain,
// Internal when there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
