package rest

import (
	"net/http"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/records"
)

// Realtime serves subscriptions to record changes (see package realtime).
type Realtime interface {
	ServeSSE(w http.ResponseWriter, r *http.Request, caller *records.Caller) error
	ServeWS(w http.ResponseWriter, r *http.Request, caller *records.Caller) error
}

func (a *API) realtimeHub() (Realtime, error) {
	if a.realtime != nil {
		if h := a.realtime(); h != nil {
			return h, nil
		}
	}
	return nil, apperr.New(apperr.Unavailable, "realtime subscriptions are not running on this node")
}

// realtimeSSE is GET /api/v1/realtime: Server-Sent Events.
func (a *API) realtimeSSE(w http.ResponseWriter, r *http.Request) error {
	hub, err := a.realtimeHub()
	if err != nil {
		return err
	}
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	return hub.ServeSSE(w, r, caller)
}

// realtimeWS is GET /api/v1/realtime/ws: the same over WebSocket.
func (a *API) realtimeWS(w http.ResponseWriter, r *http.Request) error {
	hub, err := a.realtimeHub()
	if err != nil {
		return err
	}
	caller, err := a.caller(r)
	if err != nil {
		return err
	}
	return hub.ServeWS(w, r, caller)
}
