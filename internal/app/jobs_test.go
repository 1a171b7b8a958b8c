package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/store"
)

// TestJobsThroughTheApp: a kind registered in Go runs jobs enqueued in a
// transaction from Go and through the API; /api/v1/jobs is for superusers.
func TestJobsThroughTheApp(t *testing.T) {
	var ran atomic.Int64
	s := serveWith(t, "sqlite", func(a *App) {
		a.Jobs().Register("greet", jobs.Handle(func(ctx context.Context, j *jobs.Job, args struct{ Name string }) error {
			if args.Name == "" {
				return jobs.Permanent(errNoName)
			}
			ran.Add(1)
			return nil
		}))
	})
	ctx := context.Background()
	err := s.app.DB().Write(ctx, func(tx *store.Tx) error {
		_, err := s.app.Jobs().Enqueue(ctx, tx, "greet", map[string]string{"name": "ada"}, jobs.EnqueueOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var j struct{ ID int64 }
	s.do("POST", "/api/v1/jobs", `{"kind":"greet","args":{"name":"bob"}}`, 201, &j)
	s.do("POST", "/api/v1/jobs", `{"kind":"nosuch"}`, 400, nil)
	waitUntil(t, "both jobs ran", func() bool { return ran.Load() == 2 })
	var got struct{ State string }
	waitUntil(t, "the job is completed", func() bool {
		s.do("GET", "/api/v1/jobs/"+strconv.FormatInt(j.ID, 10), "", 200, &got)
		return got.State == "completed"
	})
	var list struct{ Items []json.RawMessage }
	s.do("GET", "/api/v1/jobs?state=completed", "", 200, &list)
	if len(list.Items) != 2 {
		t.Errorf("%d completed jobs listed, want 2", len(list.Items))
	}
	s.do("GET", "/api/v1/jobs", "", 401, nil, "Authorization", "")
}

// TestWorkerRole: a worker-only node runs jobs and answers health and
// metrics, but not the API.
func TestWorkerRole(t *testing.T) {
	var ran atomic.Int64
	s := serveWith(t, "sqlite", func(a *App) {
		a.Jobs().Register("tick", func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
	}, func(c *config.Config) { c.Roles = "worker" })
	if _, err := s.app.Jobs().Enqueue(context.Background(), nil, "tick", nil, jobs.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the job ran", func() bool { return ran.Load() == 1 })
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/api/v1/collections": 404} {
		res, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s on a worker node: %d, want %d", path, res.StatusCode, want)
		}
	}
}

var errNoName = jobsError("no name")

type jobsError string

func (e jobsError) Error() string { return string(e) }

func waitUntil(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
