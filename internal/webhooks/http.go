package webhooks

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/strata-dev/strata/internal/httpx"
)

// maxBody bounds a request body.
const maxBody = 256 << 10

// Handler serves the admin API of svc:
//
//	GET    /api/v1/webhooks                     every endpoint (items), without secrets
//	POST   /api/v1/webhooks                     register one: url, events, secret?, enabled?, description?; the answer shows the secret, once
//	GET    /api/v1/webhooks/{id}                one endpoint
//	PATCH  /api/v1/webhooks/{id}                change url, events, enabled, description; enabling resets the failure count
//	DELETE /api/v1/webhooks/{id}                remove it and its delivery log
//	GET    /api/v1/webhooks/{id}/deliveries     its latest delivery attempts, newest first; limit (1-500, default 50)
//	POST   /api/v1/webhooks/{id}/test           send a webhook.test event now and answer with the attempt
//
// authorize runs first on every request; its error is the response (an
// error without an apperr kind is answered as Forbidden). Errors are RFC
// 9457 problem documents.
func Handler(svc *Service, log *slog.Logger, authorize func(*http.Request) error) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &api{svc: svc, log: log, authorize: authorize}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/webhooks", h.guard(h.list))
	mux.HandleFunc("POST /api/v1/webhooks", h.guard(h.create))
	mux.HandleFunc("GET /api/v1/webhooks/{id}", h.guard(h.get))
	mux.HandleFunc("PATCH /api/v1/webhooks/{id}", h.guard(h.update))
	mux.HandleFunc("DELETE /api/v1/webhooks/{id}", h.guard(h.delete))
	mux.HandleFunc("GET /api/v1/webhooks/{id}/deliveries", h.guard(h.deliveries))
	mux.HandleFunc("POST /api/v1/webhooks/{id}/test", h.guard(h.test))
	return mux
}

type api struct {
	svc       *Service
	log       *slog.Logger
	authorize func(*http.Request) error
}

func (h *api) guard(next func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return httpx.Guard(h.log, h.authorize, "manage webhooks")(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-store")
		return next(w, r)
	})
}

type listResponse[T any] struct {
	Items []T `json:"items"`
}

func (h *api) list(w http.ResponseWriter, r *http.Request) error {
	list, err := h.svc.List(r.Context())
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, listResponse[*Endpoint]{list})
	return nil
}

func (h *api) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, maxBody)
	if err != nil {
		return err
	}
	var p CreateParams
	if err := httpx.DecodeStrict(body, &p); err != nil {
		return err
	}
	e, err := h.svc.Create(r.Context(), p)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/webhooks/"+e.ID)
	httpx.JSON(w, http.StatusCreated, e)
	return nil
}

func (h *api) get(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, e)
	return nil
}

func (h *api) update(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, maxBody)
	if err != nil {
		return err
	}
	var p UpdateParams
	if err := httpx.DecodeStrict(body, &p); err != nil {
		return err
	}
	e, err := h.svc.Update(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, e)
	return nil
}

func (h *api) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *api) deliveries(w http.ResponseWriter, r *http.Request) error {
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return invalid("limit %q is not an integer", s)
		}
		limit = n
		if limit == 0 {
			return invalid("limit 0 is outside 1-500")
		}
	}
	list, err := h.svc.Deliveries(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, listResponse[*Delivery]{list})
	return nil
}

func (h *api) test(w http.ResponseWriter, r *http.Request) error {
	d, err := h.svc.Test(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, d)
	return nil
}
