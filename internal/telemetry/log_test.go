package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestRedact(t *testing.T) {
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
	cases := []struct{ in, secret string }{
		{"Authorization: Bearer abc.def-ghi", "abc.def-ghi"},
		{"bearer s3cr3t", "s3cr3t"},
		{"Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"},
		{"key sk_01HX2_Zx9-secretpart used", "Zx9-secretpart"},
		{"token " + jwt + " expired", jwt},
		{"dial postgres://app:hunter2@db:5432/app failed", "hunter2"},
		{"smtp://user:pa@ss@relay:587", "pa@ss"},
	}
	for _, c := range cases {
		got := Redact(c.in)
		if strings.Contains(got, c.secret) || !strings.Contains(got, Redacted) {
			t.Errorf("Redact(%q) = %q", c.in, got)
		}
	}
	for _, s := range []string{"GET /api/v1/collections", "user ada@example.com signed in", "basically fine"} {
		if got := Redact(s); got != s {
			t.Errorf("Redact(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestLoggerRedactsAndCarriesIDs(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger("debug", "json", &buf)
	ctx := WithRequest(context.Background(), &Request{ID: "req-1"})
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "login",
		"password", "hunter2hunter2",
		"Authorization", "Bearer abc",
		"refresh_token", "rt-123",
		"err", errors.New("bad key sk_01AB_cdef"),
		"wrapped", fmt.Errorf("connect: %w", errors.New("postgres://u:pw1@h/db")),
		"email", "ada@example.com")
	out := buf.String()
	for _, secret := range []string{"hunter2hunter2", "Bearer abc", "rt-123", "sk_01AB_cdef", "pw1"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q logged: %s", secret, out)
		}
	}
	for _, want := range []string{`"request_id":"req-1"`, `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"email":"ada@example.com"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
	buf.Reset()
	log.With("session_token", "st-9").WithGroup("g").Info("x", "api_key", "k-1")
	if out := buf.String(); strings.Contains(out, "st-9") || strings.Contains(out, "k-1") {
		t.Errorf("secret logged through With/WithGroup: %s", out)
	}
}

func TestLoggerFormat(t *testing.T) {
	var buf bytes.Buffer
	NewLogger("info", "auto", &buf).Info("hello")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("auto format on a non-terminal is not JSON: %s", buf.String())
	}
	buf.Reset()
	NewLogger("warn", "text", &buf).Info("hidden")
	if buf.Len() != 0 {
		t.Errorf("info logged at warn level: %s", buf.String())
	}
}

// FuzzRedact: whatever surrounds them, an API key and a bearer token are
// redacted, and redaction never panics.
func FuzzRedact(f *testing.F) {
	f.Add("", "")
	f.Add("postgres://u:p@h/d", "Bearer")
	f.Add("x", "@")
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		s := prefix + " key=sk_abc_SECRETKEY Authorization: Bearer SECRETTOKEN " + suffix
		out := Redact(s)
		for _, secret := range []string{"SECRETKEY", "SECRETTOKEN"} {
			if strings.Count(out, secret) > strings.Count(prefix+suffix, secret) {
				t.Errorf("Redact(%q) = %q keeps %s", s, out, secret)
			}
		}
	})
}

// FuzzMayHoldSecret: a string the cheap test lets through matches none
// of the patterns, and the test lets through no string that the search
// for each pattern's fixed part (the test it replaced) would have stopped.
func FuzzMayHoldSecret(f *testing.F) {
	for _, s := range []string{"", "GET", "/api/v1/collections/posts/records/r_01", "sk_1_x", "eyJa.b.c",
		"u:p@h", "BeArEr x", "bASIC y", "ba\u017fic y", "Kbearer", "xsk", "eyj", "bEARE"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if mayHoldSecret(s) {
			return
		}
		for _, sv := range secretValues {
			if sv.re.MatchString(s) {
				t.Errorf("mayHoldSecret(%q) = false, but %s matches it", s, sv.re)
			}
		}
		for _, part := range []string{"sk_", "eyJ", "@", "earer", "EARER", "asic", "ASIC"} {
			if strings.Contains(s, part) {
				t.Errorf("mayHoldSecret(%q) = false, but it contains %q", s, part)
			}
		}
	})
}

// TestPlainKeysHoldNoSecret: the names that skip the search would not
// have matched it.
func TestPlainKeysHoldNoSecret(t *testing.T) {
	for k := range plainKeys {
		lk := strings.ToLower(k)
		for _, s := range secretKeys {
			if strings.Contains(lk, s) {
				t.Errorf("%q is a plain key but contains %q", k, s)
			}
		}
	}
}

type stringer struct{}

func (stringer) String() string { return "token=eyJa.eyJb.c" }

// TestRedactionAsReplaceAttr: redacting whole records writes exactly what
// redactAttr as slog's ReplaceAttr wrote, in both formats.
func TestRedactionAsReplaceAttr(t *testing.T) {
	jwt := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"
	records := []func(*slog.Logger){
		func(l *slog.Logger) { l.Info("request", "method", "GET", "path", "/api/v1/x", "status", 200) },
		func(l *slog.Logger) { l.Info("login with Bearer "+jwt, "user", "u1") },
		func(l *slog.Logger) {
			l.Warn("failed", "err", errors.New("dial postgres://app:pw@db/x"), "password", "hunter2")
		},
		func(l *slog.Logger) { l.Info("s", "who", stringer{}, "raw", []byte("sk_01_abc"), "n", 1.5, "ok", true) },
		func(l *slog.Logger) {
			l.Info("g", slog.Group("req", "authorization", "Basic dXNlcjpwYXNz", "path", "/p", slog.Group("in", "api_key", "k")))
		},
		func(l *slog.Logger) { l.With("token", "t0", "node", "n1").Info("with", "x", "y") },
		func(l *slog.Logger) { l.WithGroup("g").Info("grouped", "secret", "s", "url", "redis://u:p@h") },
	}
	for _, format := range []string{"json", "text"} {
		for i, log := range records {
			var want, got bytes.Buffer
			opts := &slog.HandlerOptions{ReplaceAttr: redactAttr}
			var h slog.Handler = slog.NewJSONHandler(&want, opts)
			if format == "text" {
				h = slog.NewTextHandler(&want, opts)
			}
			log(slog.New(h))
			log(NewLogger("info", format, &got))
			// The times differ; everything after them must not.
			cut := func(s string) string {
				_, rest, _ := strings.Cut(s, "level")
				return rest
			}
			if cut(got.String()) != cut(want.String()) {
				t.Errorf("%s record %d:\n got %s\nwant %s", format, i, got.String(), want.String())
			}
		}
	}
}
