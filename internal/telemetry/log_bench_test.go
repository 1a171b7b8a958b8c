package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkAccessLine is the cost of one access log line in JSON, built
// as the HTTP middleware builds it for every request.
func BenchmarkAccessLine(b *testing.B) {
	h := NewLogger("info", "json", io.Discard).Handler()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		line.AddAttrs(
			slog.String("method", "GET"), slog.String("route", "GET /api/v1/collections/{name}/records/{id}"),
			slog.String("path", "/api/v1/collections/posts/records/01a20973-2245-79df-8e44-007339bb2640"),
			slog.Int("status", 200), slog.Int64("bytes", 172), slog.Duration("duration", 1500*time.Microsecond),
			slog.String("user_id", "su_01a20973"))
		if err := h.Handle(ctx, line); err != nil {
			b.Fatal(err)
		}
	}
}
