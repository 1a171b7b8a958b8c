package telemetry

import (
	"net/http"
	"net/http/pprof"
)

// PprofHandler serves Go's runtime profiles under /debug/pprof/, for an
// address of their own: they show the program's internals, and a CPU
// profile costs while it runs, so they are never on the API's address.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
