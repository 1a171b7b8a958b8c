package jobs

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/httpx"
)

// maxBody bounds an enqueue request.
const maxBody = 1 << 20

// Handler serves the admin API of svc:
//
//	GET  /api/v1/jobs               list: filter, sort, limit, cursor; state, kind, queue (each repeatable or comma-separated); offset
//	GET  /api/v1/jobs/{id}          one job
//	POST /api/v1/jobs               enqueue a registered kind
//	POST /api/v1/jobs/{id}/retry    run a failed, dead, cancelled or finished job again now
//	POST /api/v1/jobs/{id}/cancel   cancel a pending or running job
//
// authorize runs first on every request; its error is the response (an
// error without an apperr kind is answered as Forbidden). Errors are RFC
// 9457 problem documents.
func Handler(svc *Service, log *slog.Logger, authorize func(r *http.Request) error) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &api{svc: svc, log: log, authorize: authorize}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/jobs", h.guard(h.list))
	mux.HandleFunc("POST /api/v1/jobs", h.guard(h.enqueue))
	mux.HandleFunc("GET /api/v1/jobs/{id}", h.guard(h.get))
	mux.HandleFunc("POST /api/v1/jobs/{id}/retry", h.guard(h.retry))
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", h.guard(h.cancel))
	return mux
}

type api struct {
	svc       *Service
	log       *slog.Logger
	authorize func(r *http.Request) error
}

func (h *api) guard(next func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return httpx.Guard(h.log, h.authorize, "manage jobs")(next)
}

func (h *api) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	p := ListParams{Filter: q.Get("filter"), Sort: q.Get("sort"), Cursor: q.Get("cursor"),
		Kinds: multi(q["kind"]), Queues: multi(q["queue"])}
	for _, st := range multi(q["state"]) {
		p.States = append(p.States, State(st))
	}
	var err error
	if p.Limit, err = intParam(q.Get("limit"), "limit"); err != nil {
		return err
	}
	if p.Offset, err = intParam(q.Get("offset"), "offset"); err != nil {
		return err
	}
	res, err := h.svc.List(r.Context(), p)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, res)
	return nil
}

func (h *api) get(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := h.svc.Get(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

// enqueueRequest is the body of POST /api/v1/jobs.
type enqueueRequest struct {
	Kind        string          `json:"kind"`
	Args        json.RawMessage `json:"args"`
	Queue       string          `json:"queue"`
	Priority    int             `json:"priority"`
	RunAt       *time.Time      `json:"run_at"`
	MaxAttempts int             `json:"max_attempts"`
	TimeoutMS   int64           `json:"timeout_ms"`
	UniqueKey   string          `json:"unique_key"`
	Tags        []string        `json:"tags"`
}

func (h *api) enqueue(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadJSON(w, r, maxBody)
	if err != nil {
		return err
	}
	var req enqueueRequest
	if err := httpx.DecodeStrict(body, &req); err != nil {
		return err
	}
	if req.Kind == "" {
		return invalid("kind is required")
	}
	if req.TimeoutMS < 0 {
		return invalid("timeout_ms %d is negative", req.TimeoutMS)
	}
	opts := EnqueueOptions{Queue: req.Queue, Priority: req.Priority, MaxAttempts: req.MaxAttempts,
		Timeout: time.Duration(req.TimeoutMS) * time.Millisecond, UniqueKey: req.UniqueKey, Tags: req.Tags}
	if req.RunAt != nil {
		opts.RunAt = *req.RunAt
	}
	var args any
	if len(req.Args) > 0 {
		args = req.Args
	}
	j, err := h.svc.Enqueue(r.Context(), nil, req.Kind, args, opts)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10))
	httpx.JSON(w, http.StatusCreated, j)
	return nil
}

func (h *api) retry(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := h.svc.Retry(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func (h *api) cancel(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	j, err := h.svc.Cancel(r.Context(), id)
	if err != nil {
		return err
	}
	httpx.JSON(w, http.StatusOK, j)
	return nil
}

func pathID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalid("job id %q is not a positive integer", s)
	}
	return id, nil
}

func intParam(s, name string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, paramError(name, fmt.Sprintf("%s %q is not an integer", name, s))
	}
	return n, nil
}

// multi splits repeated and comma-separated query values.
func multi(vals []string) []string {
	var out []string
	for _, v := range vals {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
