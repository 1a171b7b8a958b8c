package realtime

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/strata-dev/strata/internal/records"
)

// ServeSSE serves one Server-Sent Events connection: the subscriptions come
// from the query (subscribe, repeatable; filter), a resume position from
// the Last-Event-ID header (or the last_event_id parameter). Errors found
// before the stream starts are returned for the caller to answer.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, caller *records.Caller) error {
	ctx := r.Context()
	q := r.URL.Query()
	ws, err := h.watches(ctx, caller, q["subscribe"], q.Get("filter"))
	if err != nil {
		return err
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = q.Get("last_event_id")
	}
	last, err := ParsePosition(lastID)
	if err != nil {
		return invalid(err)
	}
	c := newClient(h)
	from, err := h.register(ctx, c)
	if err != nil {
		return err
	}
	defer h.unregister(c)
	h.watch(ctx, c, ws, last)

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	send := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		return err == nil && rc.Flush() == nil
	}
	// The id of the first event is where this connection starts, so a
	// client that reconnects before any change resumes from here.
	start := max(from, last)
	buf.WriteString("retry: 2000\nid: " + strconv.FormatUint(start, 10) + "\nevent: connected\ndata: {}\n\n")
	if !send() {
		return nil
	}
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ch := <-c.queue:
			data, _ := json.Marshal(ch)
			buf.WriteString("id: " + strconv.FormatUint(ch.Seq, 10) + "\nevent: " + ch.Op + "\ndata: ")
			buf.Write(data)
			buf.WriteString("\n\n")
		case <-tick.C:
			buf.WriteString(": ping\n\n")
		case <-c.closed:
			data, _ := json.Marshal(map[string]string{"reason": c.reason()})
			buf.WriteString("event: error\ndata: ")
			buf.Write(data)
			buf.WriteString("\n\n")
			send()
			return nil
		case <-ctx.Done():
			return nil
		}
		if !send() {
			return nil
		}
	}
}
