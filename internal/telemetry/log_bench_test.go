package telemetry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkAccessLine is the cost of one access log line in JSON, as the
// HTTP middleware writes it for every request.
func BenchmarkAccessLine(b *testing.B) {
	log := NewLogger("info", "json", io.Discard)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("method", "GET"), slog.String("route", "GET /api/v1/collections/{name}/records/{id}"),
			slog.String("path", "/api/v1/collections/posts/records/01a20973-2245-79df-8e44-007339bb2640"),
			slog.Int("status", 200), slog.Int64("bytes", 172), slog.Duration("duration", 1500*time.Microsecond),
			slog.String("user_id", "su_01a20973"))
	}
}
