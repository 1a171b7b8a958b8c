package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/store"
)

type noteArgs struct {
	Note string `json:"note"`
}

// TestEnqueueTransactional: a job enqueued in a transaction that commits
// runs; one in a transaction that rolls back never exists.
func TestEnqueueTransactional(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		var ran sync.Map
		s.Register("note", Handle(func(ctx context.Context, j *Job, a noteArgs) error {
			ran.Store(a.Note, true)
			return nil
		}))
		var committed *Job
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			committed, err = s.Enqueue(ctx, tx, "note", noteArgs{"commit"}, EnqueueOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = db.Write(ctx, func(tx *store.Tx) error {
			if _, err := s.Enqueue(ctx, tx, "note", noteArgs{"rollback"}, EnqueueOptions{}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("rolled-back write: %v", err)
		}
		start(t, s)
		j := waitState(t, s, committed.ID, StateCompleted)
		if j.Attempt != 1 || len(j.Errors) != 0 || j.FinishedAt.IsZero() || !strings.HasPrefix(j.AttemptedBy, "test-") {
			t.Errorf("completed job %+v", j)
		}
		time.Sleep(100 * time.Millisecond) // a few more polls
		if _, ok := ran.Load("rollback"); ok {
			t.Fatal("a job enqueued in a rolled-back transaction ran")
		}
		res, err := s.List(ctx, ListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) != 1 {
			t.Fatalf("%d jobs stored, want 1 (the committed one)", len(res.Jobs))
		}
		if _, err := s.Enqueue(ctx, nil, "nope", nil, EnqueueOptions{}); !errors.Is(err, ErrUnknownKind) || apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("unknown kind: %v", err)
		}
	})
}

// TestRetryThenDead: failures retry with growing, jittered backoff; after
// the last attempt the job is dead with every attempt's error; Retry
// gives it one more attempt.
func TestRetryThenDead(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg := prometheus.NewRegistry()
		cfg := fast(db)
		cfg.Metrics = reg
		cfg.RetryBase = 60 * time.Millisecond
		cfg.RetryMax = time.Second
		s := newService(t, cfg)
		var fail atomic.Bool
		fail.Store(true)
		s.Register("flaky", func(ctx context.Context, j *Job) error {
			if fail.Load() {
				return fmt.Errorf("boom %d", j.Attempt)
			}
			return nil
		})
		start(t, s)
		j, err := s.Enqueue(ctx, nil, "flaky", nil, EnqueueOptions{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		j = waitState(t, s, j.ID, StateDead)
		if j.Attempt != 3 || len(j.Errors) != 3 {
			t.Fatalf("dead job after %d attempts with %d errors, want 3 and 3", j.Attempt, len(j.Errors))
		}
		for i, e := range j.Errors {
			if e.Attempt != i+1 || e.Error != fmt.Sprintf("boom %d", i+1) || e.At.IsZero() {
				t.Errorf("error %d: %+v", i, e)
			}
		}
		// Backoff after attempt n is at least half of base*2^(n-1).
		for i, min := range []time.Duration{30 * time.Millisecond, 60 * time.Millisecond} {
			if gap := j.Errors[i+1].At.Sub(j.Errors[i].At); gap < min {
				t.Errorf("attempt %d came %v after attempt %d, want at least %v", i+2, gap, i+1, min)
			}
		}
		// Metrics count after the commit the test sees.
		waitFor(t, time.Second, "the dead counter", func() bool { return value(s.m.dead.WithLabelValues("flaky")) == 1 })
		if got := value(s.m.failed.WithLabelValues("flaky")); got != 3 {
			t.Errorf("failed = %v, want 3", got)
		}
		if got := value(s.m.retried.WithLabelValues("flaky")); got != 2 {
			t.Errorf("retried = %v, want 2", got)
		}
		if got := value(s.m.dead.WithLabelValues("flaky")); got != 1 {
			t.Errorf("dead = %v, want 1", got)
		}
		fail.Store(false)
		r, err := s.Retry(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != StateAvailable || r.MaxAttempts != 4 {
			t.Errorf("retried job: state %s, max attempts %d; want available, 4", r.State, r.MaxAttempts)
		}
		j = waitState(t, s, j.ID, StateCompleted)
		if j.Attempt != 4 || len(j.Errors) != 3 {
			t.Errorf("after retry: attempt %d, %d errors", j.Attempt, len(j.Errors))
		}
		waitFor(t, time.Second, "the completed counter", func() bool { return value(s.m.completed.WithLabelValues("flaky")) == 1 })
		if n := histogramCount(t, reg, "strata_jobs_duration_seconds"); n != 4 {
			t.Errorf("duration observations = %d, want 4 (one per attempt)", n)
		}
	})
}

func TestPermanentErrorSkipsRetries(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newService(t, fast(db))
		s.Register("typed", Handle(func(ctx context.Context, j *Job, a noteArgs) error { return nil }))
		start(t, s)
		j, err := s.Enqueue(context.Background(), nil, "typed", []int{1}, EnqueueOptions{MaxAttempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		j = waitState(t, s, j.ID, StateDead)
		if j.Attempt != 1 || len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "decode args") {
			t.Errorf("job with bad args: attempt %d, errors %+v", j.Attempt, j.Errors)
		}
	})
}

func TestBackoff(t *testing.T) {
	s := &Service{cfg: Config{RetryBase: time.Second, RetryMax: time.Minute}}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: time.Minute, 100: time.Minute} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := s.backoff(attempt)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d values in 50 draws: no jitter", attempt, len(seen))
		}
	}
}

// TestUniqueKey: no second job with a key while the first is pending or
// running; the key is free again once it has finished.
func TestUniqueKey(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		s.Register("sync", func(ctx context.Context, j *Job) error { return nil })
		first, err := s.Enqueue(ctx, nil, "sync", nil, EnqueueOptions{UniqueKey: "user:1"})
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Enqueue(ctx, nil, "sync", nil, EnqueueOptions{UniqueKey: "user:1"})
		if !errors.Is(err, ErrDuplicate) || apperr.KindOf(err) != apperr.Conflict || again == nil || again.ID != first.ID {
			t.Fatalf("second enqueue: %v, %+v", err, again)
		}
		// Inside a transaction too, without spoiling it.
		err = db.Write(ctx, func(tx *store.Tx) error {
			if _, err := s.Enqueue(ctx, tx, "sync", nil, EnqueueOptions{UniqueKey: "user:1"}); !errors.Is(err, ErrDuplicate) {
				return fmt.Errorf("in tx: %v", err)
			}
			_, err := s.Enqueue(ctx, tx, "sync", nil, EnqueueOptions{UniqueKey: "user:2"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		start(t, s)
		waitState(t, s, first.ID, StateCompleted)
		next, err := s.Enqueue(ctx, nil, "sync", nil, EnqueueOptions{UniqueKey: "user:1"})
		if err != nil || next.ID == first.ID {
			t.Fatalf("enqueue after the first finished: %v", err)
		}
		res, _ := s.List(ctx, ListParams{})
		if len(res.Jobs) != 3 {
			t.Errorf("%d jobs, want 3", len(res.Jobs))
		}
	})
}

// TestScheduledRunAt: a job with RunAt waits for it.
func TestScheduledRunAt(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		ranAt := make(chan time.Time, 1)
		s.Register("later", func(ctx context.Context, j *Job) error {
			ranAt <- time.Now()
			return nil
		})
		start(t, s)
		runAt := time.Now().Add(400 * time.Millisecond)
		j, err := s.Enqueue(ctx, nil, "later", nil, EnqueueOptions{RunAt: runAt})
		if err != nil {
			t.Fatal(err)
		}
		if j.State != StateScheduled {
			t.Errorf("state %s, want scheduled", j.State)
		}
		select {
		case at := <-ranAt:
			if at.Before(runAt.Truncate(time.Millisecond)) {
				t.Fatalf("ran %v before its run_at", runAt.Sub(at))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("scheduled job never ran")
		}
	})
}

// TestPriority: within a queue, lower priority values run first.
func TestPriority(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cfg := fast(db)
		cfg.Queues = map[string]int{"default": 1}
		s := newService(t, cfg)
		var mu sync.Mutex
		var order []int
		s.Register("p", func(ctx context.Context, j *Job) error {
			mu.Lock()
			order = append(order, j.Priority)
			mu.Unlock()
			return nil
		})
		for _, p := range []int{5, 1, 9, 0} {
			if _, err := s.Enqueue(ctx, nil, "p", nil, EnqueueOptions{Priority: p}); err != nil {
				t.Fatal(err)
			}
		}
		start(t, s)
		waitFor(t, 5*time.Second, "4 jobs", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 4 })
		if fmt.Sprint(order) != "[0 1 5 9]" {
			t.Errorf("ran in order %v, want [0 1 5 9]", order)
		}
	})
}

// blocker is a handler that runs until its context ends, reporting each
// start.
func blocker(started chan<- *Job) WorkFunc {
	return func(ctx context.Context, j *Job) error {
		started <- j
		<-ctx.Done()
		return ctx.Err()
	}
}

// TestWorkerDiesLeaseExpires: a job whose worker died is taken back once
// its lease expires and runs again elsewhere, the lost attempt recorded.
func TestWorkerDiesLeaseExpires(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cfg := fast(db)
		cfg.LeaseTTL = 300 * time.Millisecond
		a := newService(t, cfg)
		started := make(chan *Job, 1)
		a.Register("work", blocker(started))
		j, err := a.Enqueue(ctx, nil, "work", nil, EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		<-started
		crash(a)

		b := newService(t, cfg)
		done := make(chan *Job, 1)
		b.Register("work", func(ctx context.Context, j *Job) error { done <- j; return nil })
		start(t, b)
		select {
		case got := <-done:
			if got.ID != j.ID || got.Attempt != 2 {
				t.Errorf("picked up job %d attempt %d, want %d attempt 2", got.ID, got.Attempt, j.ID)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the dead worker's job was never picked up again")
		}
		j = waitState(t, b, j.ID, StateCompleted)
		if len(j.Errors) != 1 || !strings.Contains(j.Errors[0].Error, "lease expired") || j.Errors[0].Worker != a.worker {
			t.Errorf("errors %+v, want the lost attempt by %s", j.Errors, a.worker)
		}
		waitFor(t, time.Second, "the expired counter", func() bool { return value(b.m.expired.WithLabelValues("work")) >= 1 })
		if got := value(b.m.expired.WithLabelValues("work")); got != 1 {
			t.Errorf("lease_expired = %v, want 1", got)
		}
	})
}

// TestHeartbeatKeepsLongJobs: a job running for several lease lengths is
// not taken back while its worker renews the lease.
func TestHeartbeatKeepsLongJobs(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cfg := fast(db)
		cfg.LeaseTTL = time.Second
		a := newService(t, cfg)
		var runs atomic.Int32
		long := func(ctx context.Context, j *Job) error {
			runs.Add(1)
			select {
			case <-time.After(5 * cfg.LeaseTTL / 2):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		a.Register("long", long)
		b := newService(t, cfg) // a second node reaping leases
		b.Register("long", long)
		j, err := a.Enqueue(ctx, nil, "long", nil, EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start(t, a)
		start(t, b)
		j = waitState(t, a, j.ID, StateCompleted)
		if j.Attempt != 1 || len(j.Errors) != 0 || runs.Load() != 1 {
			t.Errorf("long job: attempt %d, errors %+v, runs %d; want one attempt", j.Attempt, j.Errors, runs.Load())
		}
	})
}

// TestStopReleasesUnfinished: a stop whose deadline passes cancels the
// running job and gives it back, the attempt not counted, to run again.
func TestStopReleasesUnfinished(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := newService(t, fast(db))
		started := make(chan *Job, 1)
		a.Register("work", blocker(started))
		j, err := a.Enqueue(ctx, nil, "work", nil, EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		<-started
		stopCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := a.Stop(stopCtx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want the deadline", err)
		}
		got, err := a.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != StateAvailable || got.Attempt != 0 || len(got.Errors) != 0 {
			t.Fatalf("released job: state %s attempt %d errors %v; want available, 0, none", got.State, got.Attempt, got.Errors)
		}
		b := newService(t, fast(db))
		b.Register("work", func(ctx context.Context, j *Job) error { return nil })
		start(t, b)
		got = waitState(t, b, j.ID, StateCompleted)
		if got.Attempt != 1 {
			t.Errorf("attempt %d, want 1", got.Attempt)
		}
	})
}

// TestStopLetsRunningJobFinish: a stop with time to spare waits for the
// running job, which completes.
func TestStopLetsRunningJobFinish(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		started := make(chan struct{})
		s.Register("slow", func(ctx context.Context, j *Job) error {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return ctx.Err()
		})
		j, err := s.Enqueue(ctx, nil, "slow", nil, EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		<-started
		stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Stop(stopCtx); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, j.ID); got.State != StateCompleted {
			t.Fatalf("state %s after a graceful stop, want completed", got.State)
		}
	})
}

// TestCancel: a pending job never runs; a running one has its context
// cancelled and stays cancelled; a finished one cannot be cancelled.
func TestCancel(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		started := make(chan *Job, 1)
		s.Register("work", blocker(started))
		pending, err := s.Enqueue(ctx, nil, "work", nil, EnqueueOptions{RunAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cancel(ctx, pending.ID); err != nil || c.State != StateCancelled {
			t.Fatalf("cancel pending: %v %+v", err, c)
		}
		running, err := s.Enqueue(ctx, nil, "work", nil, EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start(t, s)
		<-started
		if _, err := s.Cancel(ctx, running.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Second, "the handler to return", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.running) == 0
		})
		if got, _ := s.Get(ctx, running.ID); got.State != StateCancelled || len(got.Errors) != 0 {
			t.Errorf("cancelled running job: %s %v", got.State, got.Errors)
		}
		if _, err := s.Cancel(ctx, running.ID); !errors.Is(err, ErrState) || apperr.KindOf(err) != apperr.Conflict {
			t.Errorf("cancel twice: %v", err)
		}
		if _, err := s.Cancel(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("cancel missing: %v", err)
		}
	})
}

// TestTwoPoolsExactlyOnce: two services on one database share the queue
// and run each job exactly once.
func TestTwoPoolsExactlyOnce(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 400
		var runs sync.Map
		var total atomic.Int64
		byPool := [2]atomic.Int64{}
		pools := make([]*Service, 2)
		for i := range pools {
			cfg := fast(db)
			cfg.Queues = map[string]int{"default": 4}
			pools[i] = newService(t, cfg)
			pools[i].Register("count", func(ctx context.Context, j *Job) error {
				c, _ := runs.LoadOrStore(j.ID, new(atomic.Int32))
				c.(*atomic.Int32).Add(1)
				total.Add(1)
				byPool[i].Add(1)
				return nil
			})
		}
		for _, p := range pools {
			start(t, p)
		}
		// Enqueue while both pools work, in transactions of 20.
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for b := range n / 4 / 20 {
					err := db.Write(ctx, func(tx *store.Tx) error {
						for range 20 {
							if _, err := pools[(w+b)%2].Enqueue(ctx, tx, "count", nil, EnqueueOptions{}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		waitFor(t, 20*time.Second, "every job to run", func() bool { return total.Load() >= n })
		time.Sleep(100 * time.Millisecond)
		if total.Load() != n {
			t.Errorf("%d executions of %d jobs", total.Load(), n)
		}
		runs.Range(func(id, c any) bool {
			if c.(*atomic.Int32).Load() != 1 {
				t.Errorf("job %d ran %d times", id, c.(*atomic.Int32).Load())
			}
			return true
		})
		if byPool[0].Load() == 0 || byPool[1].Load() == 0 {
			t.Errorf("work split %d/%d: one pool did nothing", byPool[0].Load(), byPool[1].Load())
		}
		res, err := pools[0].List(ctx, ListParams{States: []State{StateCompleted}, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) != n {
			t.Errorf("%d completed jobs, want %d", len(res.Jobs), n)
		}
	})
}

// TestCronOncePerTick: two nodes with the same schedule enqueue each tick
// once.
func TestCronOncePerTick(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var mu sync.Mutex
		var ticks []time.Time
		nodes := make([]*Service, 2)
		for i := range nodes {
			nodes[i] = newService(t, fast(db))
			nodes[i].Register("tick", func(ctx context.Context, j *Job) error {
				mu.Lock()
				ticks = append(ticks, j.Created)
				mu.Unlock()
				return nil
			})
			if err := nodes[i].Schedule("every-second", "@every 1s", "tick", map[string]int{"n": 1}); err != nil {
				t.Fatal(err)
			}
		}
		// Start just after a second boundary, so that 2.5 s hold two or
		// three ticks.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
		for _, n := range nodes {
			start(t, n)
		}
		time.Sleep(2500 * time.Millisecond)
		for _, n := range nodes {
			if err := n.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
		res, err := nodes[0].List(ctx, ListParams{Sort: "id"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) < 2 || len(res.Jobs) > 3 {
			t.Fatalf("%d jobs enqueued in 2.5 s of a 1 s schedule on two nodes, want 2 or 3", len(res.Jobs))
		}
		for i, j := range res.Jobs {
			if fmt.Sprint(j.Tags) != "[cron cron:every-second]" || string(j.Args) != `{"n":1}` {
				t.Errorf("cron job %+v", j)
			}
			if i > 0 && j.Created.Sub(res.Jobs[i-1].Created) < 500*time.Millisecond {
				t.Errorf("jobs %d and %d enqueued %v apart: one tick fired twice", res.Jobs[i-1].ID, j.ID, j.Created.Sub(res.Jobs[i-1].Created))
			}
		}
	})
}

func TestScheduleRejectsBadInput(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newService(t, fast(db))
		s.Register("k", func(ctx context.Context, j *Job) error { return nil })
		for _, c := range []struct{ name, spec, kind string }{
			{"a", "61 * * * *", "k"},
			{"b", "@every 5m", "missing"},
			{"bad name!", "@daily", "k"},
		} {
			if err := s.Schedule(c.name, c.spec, c.kind, nil); apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("Schedule(%q, %q, %q) = %v, want an Invalid error", c.name, c.spec, c.kind, err)
			}
		}
		if err := s.Schedule("ok", "*/5 * * * *", "k", nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Schedule("ok", "@hourly", "k", nil); err == nil {
			t.Error("a schedule declared twice was accepted")
		}
	})
}

func TestQueueDepthMetric(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cfg := fast(db)
		cfg.Metrics = prometheus.NewRegistry()
		cfg.Queues = map[string]int{"default": 1, "mail": 1}
		s := newService(t, cfg)
		s.Register("k", func(ctx context.Context, j *Job) error { return nil })
		for range 3 {
			if _, err := s.Enqueue(ctx, nil, "k", nil, EnqueueOptions{Queue: "mail"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Enqueue(ctx, nil, "k", nil, EnqueueOptions{RunAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		s.sampleDepth()
		for _, c := range []struct {
			queue, state string
			want         float64
		}{{"mail", "available", 3}, {"default", "scheduled", 1}, {"default", "available", 0}} {
			if got := value(s.m.depth.WithLabelValues(c.queue, c.state)); got != c.want {
				t.Errorf("depth{%s,%s} = %v, want %v", c.queue, c.state, got, c.want)
			}
		}
	})
}

func TestListFilters(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		s.Register("a", func(ctx context.Context, j *Job) error { return nil })
		s.Register("b", func(ctx context.Context, j *Job) error { return nil })
		for i := range 5 {
			kind := "a"
			if i%2 == 1 {
				kind = "b"
			}
			if _, err := s.Enqueue(ctx, nil, kind, nil, EnqueueOptions{Queue: "q" + kind}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := s.List(ctx, ListParams{Kinds: []string{"a"}, Sort: "id", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Jobs) != 2 || !res.More || res.Jobs[0].ID > res.Jobs[1].ID || res.Jobs[0].Kind != "a" {
			t.Errorf("page 1: %d jobs, more %v", len(res.Jobs), res.More)
		}
		res, err = s.List(ctx, ListParams{Kinds: []string{"a"}, Sort: "id", Limit: 2, Offset: 2})
		if err != nil || len(res.Jobs) != 1 || res.More {
			t.Errorf("page 2: %v %+v", err, res)
		}
		res, err = s.List(ctx, ListParams{Queues: []string{"qb"}, States: []State{StateAvailable}})
		if err != nil || len(res.Jobs) != 2 {
			t.Errorf("queue qb: %v %d", err, len(res.Jobs))
		}
		for _, p := range []ListParams{{Sort: "name"}, {Filter: "state ="}, {Cursor: "x.y"}, {Limit: 501}, {States: []State{"lost"}}, {Offset: -1}} {
			if _, err := s.List(ctx, p); apperr.KindOf(err) != apperr.Invalid {
				t.Errorf("List(%+v) = %v, want Invalid", p, err)
			}
		}
	})
}
