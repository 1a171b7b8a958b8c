package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/trace"
)

// Request is what is known about one HTTP request while it is served. The
// middleware that starts a request puts it in the context; handlers deeper
// down fill in what only they learn (the route that matched, the caller).
// It is written and read by the request's own goroutine only.
type Request struct {
	ID    string // request id, from X-Request-Id or generated
	Route string // the route template that matched, e.g. /api/v1/collections/{name}
	User  string // id of the authenticated caller, "" when anonymous
}

type requestKey struct{}

// WithRequest returns ctx carrying r.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request ctx belongs to, or nil.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if r := RequestFrom(ctx); r != nil {
		return r.ID
	}
	return ""
}

// SetUser records the authenticated caller of the request ctx belongs to.
func SetUser(ctx context.Context, id string) {
	if r := RequestFrom(ctx); r != nil {
		r.User = id
	}
}

// TraceID returns the trace id of ctx's span, from a local span or a
// traceparent header the caller sent, or "".
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
