package telemetry

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkAccessLine is the cost of one access log line in JSON, as
// the HTTP middleware logs it for every request.
func BenchmarkAccessLine(b *testing.B) {
	log := NewLogger("info", "json", io.Discard)
	ctx := WithRequest(context.Background(), &Request{ID: "5f0c6a3e9b1d2c4e8a7f6b5d"})
	b.ReportAllocs()
	for b.Loop() {
		LogAccess(ctx, log, Access{Time: time.Now(), Method: "GET", Route: "GET /api/v1/collections/{name}/records/{id}",
			Path:   "/api/v1/collections/posts/records/01a20973-2245-79df-8e44-007339bb2640",
			Status: 200, Bytes: 172, Duration: 1500 * time.Microsecond, User: "su_01a20973"})
	}
}
