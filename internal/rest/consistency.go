package rest

import (
	"context"
	"net/http"

	"github.com/strata-dev/strata/internal/store"
)

// Consistency gives each request read-your-writes over read replicas. The
// request gets a store session (store.WithSession), so its own reads see
// its own writes; a request that carries a Strata-Consistency-Token header
// reads at least what the request that returned the token wrote. A response
// to a request that wrote carries the token of its writes in the same
// header, for the client to send on its next requests. A missing or
// malformed token only loses that guarantee; it is never an error. Without
// replicas every read sees every committed write: Consistency returns next
// as it is, and no token is sent.
func Consistency(db *store.DB, next http.Handler) http.Handler {
	if db == nil || !db.HasReplicas() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := store.WithConsistencyToken(r.Context(), r.Header.Get(store.ConsistencyHeader))
		next.ServeHTTP(&tokenWriter{ResponseWriter: w, ctx: ctx}, r.WithContext(ctx))
	})
}

// tokenWriter sets the consistency token header just before the response
// header is written, once the handler's writes have committed.
type tokenWriter struct {
	http.ResponseWriter
	ctx  context.Context
	done bool
}

func (w *tokenWriter) setToken() {
	if w.done {
		return
	}
	w.done = true
	if store.Wrote(w.ctx) {
		if tok := store.ConsistencyToken(w.ctx); tok != "" {
			w.Header().Set(store.ConsistencyHeader, tok)
		}
	}
}

func (w *tokenWriter) WriteHeader(code int) {
	w.setToken()
	w.ResponseWriter.WriteHeader(code)
}

func (w *tokenWriter) Write(b []byte) (int, error) {
	w.setToken()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath (flush,
// deadlines, hijack for WebSocket).
func (w *tokenWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
