package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/httpx"
	"github.com/strata-dev/strata/internal/records"
)

// wsRequest is a message a WebSocket client sends: subscribe replaces the
// connection's subscriptions (as the SSE query would set them); with
// last_event_id the events missed since are replayed first.
type wsRequest struct {
	Type        string   `json:"type"` // "subscribe"
	Subscribe   []string `json:"subscribe"`
	Filter      string   `json:"filter"`
	LastEventID string   `json:"last_event_id"`
}

// wsMessage is a message the server sends.
type wsMessage struct {
	Type       string          `json:"type"` // "connected", "subscribed", "event", "error"
	ID         string          `json:"id,omitempty"`
	Op         string          `json:"op,omitempty"`
	Collection string          `json:"collection,omitempty"`
	Record     json.RawMessage `json:"record,omitempty"`
	Problem    *httpx.Problem  `json:"problem,omitempty"`
	Reason     string          `json:"reason,omitempty"`
}

// maxWSMessage bounds what a client may send in one message.
const maxWSMessage = 64 << 10

// ServeWS serves one WebSocket connection. Bearer tokens authenticate the
// upgrade request like any other, so the connection accepts any origin:
// no cookie grants it access.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, caller *records.Caller) error {
	c := newClient(h)
	from, err := h.register(r.Context(), c)
	if err != nil {
		return err
	}
	defer h.unregister(c)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return nil // Accept has answered the request
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxWSMessage)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	out := make(chan wsMessage, 4) // answers to the client's requests
	reply := func(m wsMessage) {
		select {
		case out <- m:
		case <-ctx.Done():
		}
	}
	go func() {
		defer cancel()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var req wsRequest
			if err := json.Unmarshal(data, &req); err != nil || req.Type != "subscribe" {
				p := httpx.ProblemFor(apperr.New(apperr.Invalid, `a message must be {"type":"subscribe","subscribe":[...],"filter":"...","last_event_id":"..."}`))
				reply(wsMessage{Type: "error", Problem: &p})
				continue
			}
			last, err := ParsePosition(req.LastEventID)
			var ws []*records.Watch
			if err == nil {
				ws, err = h.watches(ctx, caller, req.Subscribe, req.Filter)
			}
			if err != nil {
				var ae *apperr.Error
				if !errors.As(err, &ae) {
					err = invalid(err)
				}
				p := httpx.ProblemFor(err)
				reply(wsMessage{Type: "error", Problem: &p})
				continue
			}
			h.watch(ctx, c, ws, last)
			reply(wsMessage{Type: "subscribed"})
		}
	}()

	write := func(m wsMessage) bool {
		data, _ := json.Marshal(m)
		wctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, data) == nil
	}
	if !write(wsMessage{Type: "connected", ID: strconv.FormatUint(from, 10)}) {
		return nil
	}
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case ch := <-c.queue:
			if !write(wsMessage{Type: "event", ID: strconv.FormatUint(ch.Seq, 10), Op: ch.Op, Collection: ch.Collection, Record: ch.Record}) {
				return nil
			}
		case m := <-out:
			if !write(m) {
				return nil
			}
		case <-tick.C:
			pctx, pcancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return nil
			}
		case <-c.closed:
			write(wsMessage{Type: "error", Reason: c.reason()})
			conn.Close(websocket.StatusTryAgainLater, "see the last error message")
			return nil
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
}

func invalid(err error) error { return apperr.Wrap(apperr.Invalid, err, err.Error()) }
