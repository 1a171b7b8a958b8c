package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
