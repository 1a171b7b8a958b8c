package jobs

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-dev/strata/internal/store"
)

// Causes of a job context's end that mean the worker no longer owns the
// job's row: whatever the handler returns is not recorded.
var (
	errCancelled = errors.New("job cancelled")
	errLeaseLost = errors.New("job lease lost")
	errShutdown  = errors.New("worker shutting down")
)

// writeTimeout bounds the writes a worker makes after a job returns.
const writeTimeout = 10 * time.Second

// queue is one queue this node works.
type queue struct {
	name  string
	slots int
	busy  atomic.Int32
	wake  chan struct{}
}

// notify wakes the queue's fetcher without blocking.
func (q *queue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// runState is what one Start..Stop holds.
type runState struct {
	stop     chan struct{} // closed by Stop: fetchers, scheduler and maintenance end
	loops    sync.WaitGroup
	workers  sync.WaitGroup
	hbStop   chan struct{} // closed once the workers are done
	hbDone   chan struct{}
	schedNew chan struct{}
}

// Start starts this node's workers, lease renewal, lease reaping, cron
// schedules and metrics sampling; they run until Stop. Starting a started
// service is an error.
func (s *Service) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("jobs: already started")
	}
	r := &runState{stop: make(chan struct{}), hbStop: make(chan struct{}), hbDone: make(chan struct{}), schedNew: make(chan struct{}, 1)}
	s.run = r
	for _, q := range s.queues {
		r.loops.Add(1)
		go s.fetchLoop(r, q)
	}
	r.loops.Add(2)
	go s.maintain(r)
	go s.scheduleLoop(r)
	go s.heartbeatLoop(r)
	s.log.InfoContext(ctx, "jobs started", "worker", s.worker, "queues", s.cfg.Queues)
	return nil
}

// Stop stops taking jobs and waits for the running ones to finish until
// ctx ends. Jobs still running then have their contexts cancelled and are
// released: back to available, the interrupted attempt not counted, for
// any worker to take. Stop returns ctx's error when it had to release.
// Handlers that ignore their context keep running in the background, but
// nothing they return is recorded.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	close(r.stop)
	r.loops.Wait()
	done := make(chan struct{})
	go func() {
		r.workers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.releaseRunning()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			s.log.Warn("jobs: handlers still running after their context was cancelled")
		}
	}
	close(r.hbStop)
	<-r.hbDone
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
	s.log.Info("jobs stopped", "worker", s.worker, "released", err != nil)
	return err
}

// releaseRunning cancels every running job and gives its row back.
func (s *Service) releaseRunning() {
	s.mu.Lock()
	var held []*Job
	for _, a := range s.running {
		held = append(held, a.job)
		a.cancel(errShutdown)
	}
	s.mu.Unlock()
	if len(held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	var n int64
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		n, err = releaseJobs(ctx, tx, s.worker, held, time.Now())
		return err
	})
	if err != nil {
		s.log.Error("jobs: release running jobs; they run again when their leases expire", "err", err)
		return
	}
	s.log.Info("jobs: released running jobs", "count", n)
}

// cancelLocal ends the context of job id if it runs here.
func (s *Service) cancelLocal(id int64, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.running[id]; a != nil {
		a.cancel(cause)
	}
}

func (s *Service) kinds() []string { return s.Kinds() }

// fetchLoop takes jobs of q while it has free workers: at once when a job
// is enqueued on this node or a worker frees up, else every PollInterval.
func (s *Service) fetchLoop(r *runState, q *queue) {
	defer r.loops.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		free := q.slots - int(q.busy.Load())
		if free > 0 {
			jobs, err := s.fetch(q, free)
			if err != nil {
				s.log.Error("jobs: fetch", "queue", q.name, "err", err)
			}
			for _, j := range jobs {
				s.launch(r, q, j)
			}
			if err == nil && len(jobs) == free {
				continue // there may be more
			}
		}
		timer.Reset(s.cfg.PollInterval)
		select {
		case <-r.stop:
			return
		case <-q.wake:
		case <-timer.C:
		}
	}
}

func (s *Service) fetch(q *queue, n int) ([]*Job, error) {
	kinds := s.kinds()
	if len(kinds) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	var jobs []*Job
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		now := time.Now()
		var err error
		jobs, err = fetchJobs(ctx, tx, q.name, kinds, n, s.worker, now, now.Add(s.cfg.LeaseTTL))
		return err
	})
	return jobs, err
}

// launch runs j on a worker goroutine.
func (s *Service) launch(r *runState, q *queue, j *Job) {
	ctx, cancel := context.WithCancelCause(context.Background())
	q.busy.Add(1)
	r.workers.Add(1)
	s.mu.Lock()
	s.running[j.ID] = &active{job: j, cancel: cancel}
	s.mu.Unlock()
	go func() {
		defer r.workers.Done()
		defer func() {
			q.busy.Add(-1)
			q.notify()
		}()
		s.work(ctx, j)
		s.mu.Lock()
		delete(s.running, j.ID)
		s.mu.Unlock()
		cancel(nil)
	}()
}

// work runs one attempt and records how it ended.
func (s *Service) work(ctx context.Context, j *Job) {
	h := s.handler(j.Kind)
	tctx, cancel := context.WithTimeout(ctx, j.Timeout)
	start := time.Now()
	err := call(tctx, h, j)
	cancel()
	s.m.duration.WithLabelValues(j.Kind).Observe(time.Since(start).Seconds())
	if err != nil && context.Cause(ctx) != nil {
		// Cancelled, released or taken over: the row is no longer ours.
		s.log.Info("jobs: attempt interrupted", "job", j.ID, "kind", j.Kind, "attempt", j.Attempt, "cause", context.Cause(ctx))
		return
	}
	if err != nil && errors.Is(err, context.DeadlineExceeded) && tctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", j.Timeout, err)
	}
	s.finish(j, err)
}

// call runs h, turning a panic into an error.
func call(ctx context.Context, h WorkFunc, j *Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	if h == nil {
		return Permanent(fmt.Errorf("no handler for kind %q", j.Kind))
	}
	return h(ctx, j)
}

// maxErrorLen bounds the text kept of one attempt's error.
const maxErrorLen = 4096

// finish records an attempt's outcome: completed, or failed and then
// retryable after a backoff or dead after the last attempt.
func (s *Service) finish(j *Job, jobErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	now := time.Now()
	state, runAt := StateCompleted, time.Time{}
	var errs []AttemptError
	if jobErr != nil {
		msg := jobErr.Error()
		if len(msg) > maxErrorLen {
			msg = msg[:maxErrorLen]
		}
		errs = append(j.Errors, AttemptError{Attempt: j.Attempt, At: now.UTC(), Error: msg, Worker: s.worker})
		var perm *errPermanent
		if j.Attempt >= j.MaxAttempts || errors.As(jobErr, &perm) {
			state = StateDead
		} else {
			state, runAt = StateRetryable, now.Add(s.backoff(j.Attempt))
		}
	}
	var held bool
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		held, err = finishAttempt(ctx, tx, j, s.worker, state, runAt, errs, now)
		return err
	})
	switch {
	case err != nil:
		s.log.Error("jobs: record attempt; the job runs again when its lease expires", "job", j.ID, "kind", j.Kind, "err", err)
		return
	case !held:
		s.log.Info("jobs: attempt ended after the job was taken from this worker", "job", j.ID, "kind", j.Kind)
		return
	}
	switch state {
	case StateCompleted:
		s.m.completed.WithLabelValues(j.Kind).Inc()
	case StateRetryable:
		s.m.failed.WithLabelValues(j.Kind).Inc()
		s.m.retried.WithLabelValues(j.Kind).Inc()
		s.log.Warn("jobs: attempt failed; retrying", "job", j.ID, "kind", j.Kind, "attempt", j.Attempt, "run_at", runAt, "err", jobErr)
	case StateDead:
		s.m.failed.WithLabelValues(j.Kind).Inc()
		s.m.dead.WithLabelValues(j.Kind).Inc()
		s.log.Error("jobs: job dead after its last attempt", "job", j.ID, "kind", j.Kind, "attempt", j.Attempt, "err", jobErr)
	}
}

// heartbeatLoop renews the leases of the jobs running here every third of
// LeaseTTL, and cancels those this worker no longer holds (cancelled by an
// operator, or taken back after a lease ran out). It runs until the
// workers are done.
func (s *Service) heartbeatLoop(r *runState) {
	defer close(r.hbDone)
	t := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-r.hbStop:
			return
		case <-t.C:
		}
		s.heartbeat()
	}
}

func (s *Service) heartbeat() {
	s.mu.Lock()
	ids := make([]int64, 0, len(s.running))
	attempts := make(map[int64]int, len(s.running))
	for id, a := range s.running {
		ids = append(ids, id)
		attempts[id] = a.job.Attempt
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.LeaseTTL)
	defer cancel()
	var held map[int64]int
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		held, err = extendLeases(ctx, tx, s.worker, ids, time.Now().Add(s.cfg.LeaseTTL))
		return err
	})
	if err != nil {
		s.log.Error("jobs: renew leases", "err", err)
		return
	}
	for _, id := range ids {
		if a, ok := held[id]; !ok || a != attempts[id] {
			s.cancelLocal(id, errLeaseLost)
		}
	}
}

// maintain takes back jobs whose leases expired, prunes old finished jobs
// and samples the queue depth.
func (s *Service) maintain(r *runState) {
	defer r.loops.Done()
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	var lastPrune, lastDepth time.Time
	for {
		now := time.Now()
		s.reap()
		if now.Sub(lastPrune) >= time.Minute {
			s.prune(now)
			lastPrune = now
		}
		if now.Sub(lastDepth) >= s.cfg.DepthInterval {
			s.sampleDepth()
			lastDepth = now
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

// reap takes back jobs whose worker stopped renewing their lease (a node
// that died or hung): each counts as a failed attempt, so a job that kills
// its worker every time ends dead instead of looping.
func (s *Service) reap() {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	var taken []*Job
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		taken = taken[:0]
		now := time.Now()
		jobs, err := expiredJobs(ctx, tx, now, 100)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			errs := append(j.Errors, AttemptError{Attempt: j.Attempt, At: now.UTC(), Worker: j.AttemptedBy,
				Error: fmt.Sprintf("lease expired at %s: the worker stopped renewing it", j.LeaseUntil.Format(time.RFC3339Nano))})
			state, runAt := StateRetryable, now.Add(s.backoff(j.Attempt))
			if j.Attempt >= j.MaxAttempts {
				state = StateDead
			}
			ok, err := finishAttempt(ctx, tx, j, j.AttemptedBy, state, runAt, errs, now)
			if err != nil {
				return err
			}
			if ok {
				j.State = state
				taken = append(taken, j)
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("jobs: take back expired leases", "err", err)
		return
	}
	for _, j := range taken {
		s.m.expired.WithLabelValues(j.Kind).Inc()
		s.m.failed.WithLabelValues(j.Kind).Inc()
		if j.State == StateDead {
			s.m.dead.WithLabelValues(j.Kind).Inc()
		} else {
			s.m.retried.WithLabelValues(j.Kind).Inc()
		}
		s.log.Warn("jobs: took back a job whose lease expired", "job", j.ID, "kind", j.Kind, "worker", j.AttemptedBy, "state", j.State)
	}
}

func (s *Service) prune(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		a := newArgs(tx.Dialect)
		_, err := tx.ExecContext(ctx, `DELETE FROM _jobs WHERE state IN ('completed', 'cancelled') AND finished_at < `+a.Add(store.Stamp(now.Add(-s.cfg.Retention))), a.Values...)
		return err
	})
	if err != nil {
		s.log.Error("jobs: prune finished jobs", "err", err)
	}
}

func (s *Service) sampleDepth() {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	rows, err := s.db.Reader().QueryContext(ctx, `SELECT queue, state, COUNT(*) FROM _jobs WHERE state NOT IN ('completed', 'cancelled') GROUP BY queue, state`)
	if err != nil {
		s.log.Error("jobs: sample queue depth", "err", err)
		return
	}
	defer rows.Close()
	type key struct{ q, st string }
	counts := map[key]float64{}
	for rows.Next() {
		var k key
		var n int64
		if err := rows.Scan(&k.q, &k.st, &n); err != nil {
			s.log.Error("jobs: sample queue depth", "err", err)
			return
		}
		counts[k] = float64(n)
	}
	if rows.Err() != nil {
		return
	}
	// Queues this node works report every pending state, zeros included.
	for q := range s.queues {
		for _, st := range []State{StateAvailable, StateScheduled, StateRetryable, StateRunning, StateDead} {
			if _, ok := counts[key{q, string(st)}]; !ok {
				counts[key{q, string(st)}] = 0
			}
		}
	}
	for k, n := range counts {
		s.m.depth.WithLabelValues(k.q, k.st).Set(n)
	}
}
