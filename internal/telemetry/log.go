package telemetry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/term"
)

// NewLogger returns a logger writing to w at level ("debug", "info", "warn"
// or "error") in format: "json", "text", or "auto" for text when w is a
// terminal and JSON otherwise. Every line logged with a request's context
// carries request_id and, when the request is traced or came with a
// traceparent, trace_id. Secrets are redacted (see Redact).
func NewLogger(level, format string, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	// Redaction is done by contextHandler rather than ReplaceAttr: with a
	// ReplaceAttr, slog passes every attribute of every line through it,
	// the time, level and message too, and most lines hold no secret.
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if IsTerminal(w) {
			format = "text"
		}
	}
	if format != "json" {
		return slog.New(contextHandler{Handler: slog.NewTextHandler(w, opts)})
	}
	// The handler and LogAccess's own encoder write whole lines through
	// one lock.
	lw := &lockedWriter{w: w}
	return slog.New(contextHandler{Handler: slog.NewJSONHandler(lw, opts), json: lw})
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// contextHandler adds the request and trace ids found in a record's
// context. json is set when it writes JSON lines with nothing added by
// WithAttrs or WithGroup: LogAccess then writes its line itself.
type contextHandler struct {
	slog.Handler
	json *lockedWriter
}

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if req := RequestFrom(ctx); req != nil {
			r.AddAttrs(slog.String("request_id", req.ID))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
		}
	}
	return h.Handler.Handle(ctx, redactRecord(r))
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = redact(a)
	}
	return contextHandler{Handler: h.Handler.WithAttrs(out)}
}

// redactRecord returns r with its message and attributes redacted; r
// itself when nothing in it needs to be, which is the common case.
func redactRecord(r slog.Record) slog.Record {
	dirty := mayHoldSecret(r.Message)
	if !dirty {
		r.Attrs(func(a slog.Attr) bool {
			dirty = changes(a)
			return !dirty
		})
	}
	if !dirty {
		return r
	}
	out := slog.NewRecord(r.Time, r.Level, Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redact(a))
		return true
	})
	return out
}

// changes reports whether redact would change a.
func changes(a slog.Attr) bool {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		for _, m := range v.Group() {
			if changes(m) {
				return true
			}
		}
		return false
	case slog.KindString:
		return secretKey(a.Key) || mayHoldSecret(v.String())
	case slog.KindAny:
		switch v.Any().(type) {
		case error, interface{ String() string }, []byte:
			return true
		}
	}
	return secretKey(a.Key)
}

// redact is redactAttr applied to a and, in a group, to its members.
func redact(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() != slog.KindGroup {
		return redactAttr(nil, a)
	}
	ms := a.Value.Group()
	out := make([]slog.Attr, len(ms))
	for i, m := range ms {
		out[i] = redact(m)
	}
	return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{Handler: h.Handler.WithGroup(name)}
}

// Redacted replaces a secret in the logs.
const Redacted = "[REDACTED]"

// secretKeys are parts of attribute names whose values are never logged.
var secretKeys = []string{"password", "passwd", "secret", "token", "authorization", "cookie", "api_key", "apikey", "private_key", "otp"}

// secretValues match secrets inside any logged string: bearer credentials,
// API keys (sk_<id>_<secret>), JWTs, and URL passwords.
var secretValues = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+`), "$1 " + Redacted},
	{regexp.MustCompile(`\bsk_[A-Za-z0-9]+_[A-Za-z0-9_-]+`), Redacted},
	{regexp.MustCompile(`\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`), Redacted},
	{regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]+@`), "${1}" + Redacted + "@"},
}

// Redact returns s with every secret it recognises replaced.
func Redact(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	for _, sv := range secretValues {
		s = sv.re.ReplaceAllString(s, sv.repl)
	}
	return s
}

// mayHoldSecret is a cheap test that lets most strings skip the regexps:
// false means none of secretValues matches s. It reads s once, looking
// for what each pattern must contain: "sk_", "eyJ", '@', and "bearer" or
// "basic" in any case (their tails "earer" and "asic"). A string with a
// byte outside ASCII goes to the regexps, whose case folding also matches
// letters such as U+017F (ſ) and U+212A (K).
func mayHoldSecret(s string) bool {
	for i := 0; i < len(s); i++ {
		if !secretStart[s[i]] {
			continue
		}
		rest := s[i+1:]
		switch s[i] {
		case '@':
			return true
		case 's':
			if strings.HasPrefix(rest, "k_") {
				return true
			}
		case 'e':
			if strings.HasPrefix(rest, "yJ") || foldPrefix(rest, "arer") {
				return true
			}
		case 'E':
			if foldPrefix(rest, "arer") {
				return true
			}
		case 'a', 'A':
			if foldPrefix(rest, "sic") {
				return true
			}
		default:
			if s[i] >= utf8.RuneSelf {
				return true
			}
		}
	}
	return false
}

// secretStart marks the bytes mayHoldSecret looks at more closely: those
// that begin what a pattern must contain, and every byte outside ASCII.
var secretStart = func() (t [256]bool) {
	for _, c := range []byte("@seEaA") {
		t[c] = true
	}
	for c := utf8.RuneSelf; c < len(t); c++ {
		t[c] = true
	}
	return t
}()

// foldPrefix reports whether s begins with lower, a lower-case ASCII word,
// in any case.
func foldPrefix(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// secretKey reports whether an attribute named k holds a secret.
func secretKey(k string) bool {
	if plainKeys[k] {
		return false
	}
	k = strings.ToLower(k)
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// plainKeys are the names on every line, of the access line in particular,
// known to hold no secret: they skip the search of secretKey.
var plainKeys = map[string]bool{
	slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, "request_id": true, "trace_id": true,
	"method": true, "route": true, "path": true, "status": true, "bytes": true, "duration": true, "user_id": true,
}

// redactAttr hides the values of secret-named attributes and the secrets
// inside any other string or error.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindGroup {
		return a
	}
	if secretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); mayHoldSecret(s) {
			return slog.String(a.Key, Redact(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			return slog.String(a.Key, Redact(v.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, Redact(v.String()))
		case []byte:
			return slog.String(a.Key, Redact(string(v)))
		}
	}
	return a
}
