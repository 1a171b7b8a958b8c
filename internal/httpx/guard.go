package httpx

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/strata-dev/strata/internal/apperr"
)

// Guard returns a wrapper for handlers that return their error: authorize,
// when set, runs first and its error is the answer (one without an apperr
// kind is answered Forbidden, "not allowed to <what>"); a handler's error
// becomes a problem document.
func Guard(log *slog.Logger, authorize func(*http.Request) error, what string) func(func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(next func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if authorize != nil {
				if err := authorize(r); err != nil {
					var ae *apperr.Error
					if !errors.As(err, &ae) {
						err = apperr.Wrap(apperr.Forbidden, err, "not allowed to "+what)
					}
					Error(w, r, log, err)
					return
				}
			}
			if err := next(w, r); err != nil {
				Error(w, r, log, err)
			}
		}
	}
}
