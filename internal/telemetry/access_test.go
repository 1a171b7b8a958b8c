package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// accessLines logs a through a JSON logger from NewLogger and through
// slog's own JSON handler behind contextHandler, and returns both lines.
func accessLines(ctx context.Context, a Access) (fast, slow string) {
	var f, s bytes.Buffer
	LogAccess(ctx, NewLogger("info", "json", &f), a)
	LogAccess(ctx, slog.New(contextHandler{Handler: slog.NewJSONHandler(&s, nil)}), a)
	return f.String(), s.String()
}

func TestLogAccess(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 0, 0, 123456789, time.FixedZone("", 3600))
	a := Access{Time: at, Method: "GET", Route: "/api/v1/collections/{name}/records/{id}",
		Path: "/api/v1/collections/posts/records/r1", Status: 200, Bytes: 172, Duration: 1500 * time.Microsecond, User: "u_1"}
	ctx := WithRequest(context.Background(), &Request{ID: "req-1"})
	fast, slow := accessLines(ctx, a)
	want := `{"time":"2026-12-07T21:00:00.123456789+01:00","level":"INFO","msg":"request","method":"GET",` +
		`"route":"/api/v1/collections/{name}/records/{id}","path":"/api/v1/collections/posts/records/r1",` +
		`"status":200,"bytes":172,"duration":1500000,"user_id":"u_1","request_id":"req-1"}` + "\n"
	if fast != want || slow != want {
		t.Errorf("fast %s slow %s want %s", fast, slow, want)
	}

	// A secret in the path is redacted; a traced request carries its id.
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	a.Path = "/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"
	fast, slow = accessLines(ctx, a)
	if fast != slow || !bytes.Contains([]byte(fast), []byte(`"path":"/reset/`+Redacted+`"`)) ||
		!bytes.Contains([]byte(fast), []byte(`"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`)) {
		t.Errorf("fast %s slow %s", fast, slow)
	}

	// Other loggers take the slog path: text, a logger With attributes,
	// a level above Info.
	var text, with, warn bytes.Buffer
	LogAccess(ctx, NewLogger("info", "text", &text), a)
	LogAccess(ctx, NewLogger("info", "json", &with).With("node", "n1"), a)
	LogAccess(ctx, NewLogger("warn", "json", &warn), a)
	if !bytes.Contains(text.Bytes(), []byte("msg=request method=GET")) {
		t.Errorf("text: %s", text.Bytes())
	}
	if !bytes.Contains(with.Bytes(), []byte(`"node":"n1","method":"GET"`)) {
		t.Errorf("with attributes: %s", with.Bytes())
	}
	if warn.Len() != 0 {
		t.Errorf("logged below the level: %s", warn.Bytes())
	}
}

// FuzzLogAccess holds the access line written by hand to the one slog
// writes.
func FuzzLogAccess(f *testing.F) {
	f.Add("GET", "/api/{x}", "/api/é\"\n\xff sk_live_abc bearer x@y", "u\u2028", "req", 200, int64(12), int64(1500))
	f.Add("", "", "", "", "", -1, int64(-5), int64(0))
	f.Fuzz(func(t *testing.T, method, route, path, user, id string, status int, size, dur int64) {
		a := Access{Time: time.Unix(1765000000, 5).UTC(), Method: method, Route: route, Path: path,
			Status: status, Bytes: size, Duration: time.Duration(dur), User: user}
		fast, slow := accessLines(WithRequest(context.Background(), &Request{ID: id}), a)
		if fast != slow {
			t.Fatalf("by hand %s\nslog    %s", fast, slow)
		}
	})
}
