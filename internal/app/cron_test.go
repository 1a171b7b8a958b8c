package app

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestCronFromConfig: a schedule of the cron setting enqueues jobs of a
// kind registered in Go, on the queue job_queues gives workers, on both
// engines; its jobs are listed by the filter on their tag.
func TestCronFromConfig(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			var ran atomic.Int64
			s := serveWith(t, engine, func(a *App) {
				a.Jobs().Register("report.tick", func(ctx context.Context, j *jobs.Job) error {
					ran.Add(1)
					return nil
				})
			}, func(c *config.Config) {
				c.Cron = "ticker: @every 1s report.tick"
				c.JobQueues = "reports=2"
			})
			waitUntil(t, "the cron job ran", func() bool { return ran.Load() >= 1 })
			var list struct {
				Items []struct {
					Kind, Queue string
					Tags        []string
				}
			}
			s.do("GET", "/api/v1/jobs?filter="+url.QueryEscape(`tags ~ "cron:ticker" && kind = "report.tick"`), "", 200, &list)
			if len(list.Items) == 0 || list.Items[0].Queue != "default" {
				t.Errorf("cron jobs listed: %+v", list.Items)
			}
		})
	}
}

// TestCronUnknownKind: a schedule naming a kind nothing registers stops
// the start of a worker with an error naming the schedule and the kind.
func TestCronUnknownKind(t *testing.T) {
	ta := newTestApp(t, "sqlite", func(c *config.Config) {
		c.Cron = "nightly: 0 3 * * * report.nightly"
	})
	ta.app.Jobs().Register("report.daily", func(context.Context, *jobs.Job) error { return nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = ta.app.Serve(ctx, ln)
	if err == nil || !strings.Contains(err.Error(), `cron schedule nightly names job kind "report.nightly", which nothing registers (registered kinds: `) ||
		!strings.Contains(err.Error(), "report.daily") {
		t.Fatalf("Serve = %v", err)
	}
}

// TestJobQueuesFromConfig: job_queues gives a queue workers beside the
// default queue's job_workers.
func TestJobQueuesFromConfig(t *testing.T) {
	var ran atomic.Int64
	s := serveWith(t, "sqlite", func(a *App) {
		a.Jobs().Register("mail", func(context.Context, *jobs.Job) error { ran.Add(1); return nil })
	}, func(c *config.Config) { c.JobQueues = "emails=2" })
	for _, q := range []string{"emails", "default"} {
		if _, err := s.app.Jobs().Enqueue(context.Background(), nil, "mail", nil, jobs.EnqueueOptions{Queue: q}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "jobs of both queues ran", func() bool { return ran.Load() == 2 })
}
