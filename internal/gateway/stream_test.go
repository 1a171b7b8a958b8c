package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWebSocketPassesThrough(t *testing.T) {
	ws := newBackend(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	g, gw := startGateway(t, Config{Upstreams: []string{ws.url}, HealthInterval: -1, RequestTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/api/realtime", nil)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer c.CloseNow()
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	up := g.pool.list()[0]
	for i := range 3 {
		// The third message is sent after the request timeout has passed:
		// upgraded connections are not cut by it.
		if i == 2 {
			time.Sleep(80 * time.Millisecond)
		}
		want := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(want)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+want {
			t.Fatalf("got %q, want %q", got, "echo: "+want)
		}
	}
	if n := up.inFlight.Load(); n != 1 {
		t.Errorf("in flight while the socket is open = %d, want 1", n)
	}
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, 2*time.Second, "the upgraded connection to leave the in-flight count", func() bool { return up.inFlight.Load() == 0 })
}

func TestSSEFlushedPerEvent(t *testing.T) {
	second := make(chan struct{})
	sse := newBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, "event: created\ndata: {\"id\":1}\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-second:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: created\ndata: {\"id\":2}\n\n")
	})
	_, gw := startGateway(t, Config{Upstreams: []string{sse.url}, HealthInterval: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/api/realtime", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(res.Body)
	readEvent := func() string {
		var ev []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			if line == "\n" {
				return strings.Join(ev, "|")
			}
			ev = append(ev, strings.TrimSuffix(line, "\n"))
		}
	}
	// The second event is not written until the first has arrived: without
	// a flush per event this read would wait until the deadline.
	if ev := readEvent(); ev != `event: created|data: {"id":1}` {
		t.Fatalf("first event %q", ev)
	}
	close(second)
	if ev := readEvent(); ev != `event: created|data: {"id":2}` {
		t.Fatalf("second event %q", ev)
	}
}
