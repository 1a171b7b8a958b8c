package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkOverhead compares a small JSON GET sent straight to an upstream
// with the same GET through the gateway, from parallel clients over
// keep-alive connections. The difference is the gateway's cost per request.
func BenchmarkOverhead(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"rec_01","title":"hello","count":3}`))
	}))
	b.Cleanup(up.Close)
	_, gw := startGateway(b, Config{Upstreams: []string{up.URL}, HealthInterval: -1})

	for _, bc := range []struct{ name, url string }{{"direct", up.URL}, {"gateway", gw.URL}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 1024}
			b.Cleanup(tr.CloseIdleConnections)
			cl := &http.Client{Transport: tr}
			url := bc.url + "/api/v1/collections/posts/records/rec_01"
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cl.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
}
