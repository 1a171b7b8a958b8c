package strata_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/strata-dev/strata"
)

// TestEmbed runs Strata from Go: New, Serve on a listener, stop by
// cancelling the context.
func TestEmbed(t *testing.T) {
	cfg := strata.DefaultConfig()
	cfg.Dir = t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	app, err := strata.New(ctx, cfg, strata.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("readyz: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v after cancel", err)
	}
	bad := strata.DefaultConfig()
	bad.LogLevel = "loud"
	if _, err := strata.New(context.Background(), bad); err == nil {
		t.Errorf("New accepted an invalid config")
	}
}
