// Command ceiling is the ceiling of the benchmark: a bare net/http server
// that answers every GET with the same JSON record, so that what it serves
// is the cost of HTTP alone on this machine.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

// record is shaped like a post of the benchmark's data.
const record = `{"id":"0197a8c2f4b07c3d","created":"2025-01-01T00:00:00.000Z","updated":"2025-01-01T00:00:00.000Z",` +
	`"title":"Post 42: quiet river over stone","views":512,"published":true,"author":"0197a8c2f4b07c3e",` +
	`"body":"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua"}`

func main() {
	addr := flag.String("http", "127.0.0.1:8094", "listen address")
	flag.Parse()
	body := []byte(record)
	size := strconv.Itoa(len(body))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", size)
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
