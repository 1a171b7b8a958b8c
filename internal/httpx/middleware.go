package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/auth"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the id of the request ctx belongs to.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status int
	size   int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.size += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Middleware wraps every request: it gives it an id (X-Request-Id, taken
// from the client when well formed), sets security headers, turns panics
// into 500 problems and logs one line per request.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		ctx = auth.WithClient(ctx, auth.Client{IP: ip, UserAgent: r.UserAgent()})
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		rec := &recorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err := fmt.Errorf("panic: %v", v)
				log.ErrorContext(ctx, "handler panicked", "request_id", id, "err", err)
				if rec.status == 0 {
					WriteProblem(rec, ProblemFor(err))
				}
			}
			log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.size),
				slog.Duration("duration", time.Since(start)),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// problemWriter replaces the plain text 404 and 405 answers of
// http.ServeMux with problem documents.
type problemWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (p *problemWriter) WriteHeader(code int) {
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		p.Header().Get("Content-Type") == "text/plain; charset=utf-8" {
		p.replaced = true
		var err error
		if code == http.StatusNotFound {
			err = apperr.New(apperr.NotFound, "no route matches %s %s", p.r.Method, p.r.URL.Path)
		} else {
			err = apperr.New(apperr.MethodNotAllowed, "%s is not allowed on %s; allowed: %s", p.r.Method, p.r.URL.Path, p.Header().Get("Allow"))
		}
		pr := ProblemFor(err)
		pr.Instance = p.r.URL.Path
		WriteProblem(p.ResponseWriter, pr)
		return
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.replaced {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Problems makes the mux's own 404 and 405 answers problem documents.
func Problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&problemWriter{ResponseWriter: w, r: r}, r)
	})
}
