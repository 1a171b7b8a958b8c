package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// The process tests run workers as separate processes (this test binary,
// re-run in worker mode) on one PostgreSQL database, and kill them.
const (
	envWorker = "STRATA_JOBS_TEST_WORKER" // the worker's name
	envDB     = "STRATA_JOBS_TEST_DB"     // the database URL
	envLease  = "STRATA_JOBS_TEST_LEASE"  // the lease, a duration
)

// workerProcess runs a job pool until SIGTERM: kind "count" records each
// run; kind "slow" records its start, and the first run of a job takes
// long enough to be killed in.
func workerProcess() int {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Params{Engine: "postgres", URL: os.Getenv(envDB)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer db.Close()
	lease, _ := time.ParseDuration(os.Getenv(envLease))
	name := os.Getenv(envWorker)
	svc, err := New(Config{DB: db, Queues: map[string]int{"default": 8}, Node: name, LeaseTTL: lease,
		PollInterval: 50 * time.Millisecond, ReapInterval: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	record := func(ctx context.Context, table string, j *Job) error {
		return db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO "+table+" (job_id, worker, attempt) VALUES ($1, $2, $3)", j.ID, name, j.Attempt)
			return err
		})
	}
	svc.Register("count", func(ctx context.Context, j *Job) error { return record(ctx, "test_runs", j) })
	svc.Register("slow", func(ctx context.Context, j *Job) error {
		if err := record(ctx, "test_starts", j); err != nil {
			return err
		}
		if j.Attempt == 1 {
			select {
			case <-time.After(time.Minute):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return record(ctx, "test_runs", j)
	})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	<-stop
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// workers starts worker processes on dbURL; stop them with SIGTERM or kill.
func startWorker(t *testing.T, name, dbURL string, lease time.Duration) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"="+name, envDB+"="+dbURL, envLease+"="+lease.String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func processDB(t *testing.T) (string, *store.DB, *Service) {
	t.Helper()
	if len(storetest.Engines(t)) < 2 {
		t.Skip("the process tests need PostgreSQL")
	}
	url := storetest.Schema(t)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Params{Engine: "postgres", URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := New(Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	// This service only enqueues; the worker processes run the kinds.
	notHere := func(context.Context, *Job) error { return fmt.Errorf("runs in a worker process") }
	svc.Register("count", notHere)
	svc.Register("slow", notHere)
	err = db.Write(ctx, func(tx *store.Tx) error {
		for _, table := range []string{"test_runs", "test_starts"} {
			if _, err := tx.ExecContext(ctx, "CREATE TABLE "+table+" (job_id BIGINT NOT NULL, worker TEXT NOT NULL, attempt INT NOT NULL)"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return url, db, svc
}

func count(t *testing.T, db *store.DB, query string) int {
	t.Helper()
	var n int
	if err := db.Reader().QueryRowContext(context.Background(), query).Scan(&n); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	return n
}

// TestThreeWorkerProcesses: 10,000 jobs across three worker processes on
// PostgreSQL run exactly once each, and every process takes a share.
func TestThreeWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	url, db, svc := processDB(t)
	ctx := context.Background()
	const n = 10000
	for batch := 0; batch < n; batch += 500 {
		err := db.Write(ctx, func(tx *store.Tx) error {
			for i := batch; i < batch+500; i++ {
				if _, err := svc.Enqueue(ctx, tx, "count", nil, EnqueueOptions{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var procs []*exec.Cmd
	for i := range 3 {
		procs = append(procs, startWorker(t, "w"+strconv.Itoa(i), url, 30*time.Second))
	}
	deadline := time.Now().Add(2 * time.Minute)
	for count(t, db, "SELECT COUNT(*) FROM _jobs WHERE state = 'completed'") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed after 2 minutes", count(t, db, "SELECT COUNT(*) FROM _jobs WHERE state = 'completed'"), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			t.Errorf("worker exit: %v", err)
		}
	}
	if runs, distinct := count(t, db, "SELECT COUNT(*) FROM test_runs"), count(t, db, "SELECT COUNT(DISTINCT job_id) FROM test_runs"); runs != n || distinct != n {
		t.Errorf("%d runs of %d distinct jobs, want %d of %d: a job ran twice or not at all", runs, distinct, n, n)
	}
	for i := range 3 {
		if got := count(t, db, fmt.Sprintf("SELECT COUNT(*) FROM test_runs WHERE worker = 'w%d'", i)); got == 0 {
			t.Errorf("worker w%d ran no job", i)
		}
	}
}

// TestWorkerKilledMidJob: a worker process killed with SIGKILL while it
// runs a job loses nothing: once its lease expires another process runs
// the job again, and it finishes once.
func TestWorkerKilledMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	url, db, svc := processDB(t)
	ctx := context.Background()
	j, err := svc.Enqueue(ctx, nil, "slow", nil, EnqueueOptions{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	a := startWorker(t, "a", url, time.Second)
	deadline := time.Now().Add(time.Minute)
	for count(t, db, "SELECT COUNT(*) FROM test_starts") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	b := startWorker(t, "b", url, time.Second)
	for {
		got, err := svc.Get(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == StateCompleted {
			if got.Attempt != 2 || len(got.Errors) != 1 {
				t.Errorf("job after the kill: attempt %d, errors %v; want attempt 2 with the lost one recorded", got.Attempt, got.Errors)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is %s after a minute", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Process.Signal(syscall.SIGTERM)
	b.Wait()
	if starts, runs := count(t, db, "SELECT COUNT(*) FROM test_starts"), count(t, db, "SELECT COUNT(*) FROM test_runs"); starts != 2 || runs != 1 {
		t.Errorf("%d starts and %d finished runs, want 2 and 1", starts, runs)
	}
	if w := count(t, db, "SELECT COUNT(*) FROM test_runs WHERE worker = 'b'"); w != 1 {
		t.Error("the job did not finish on the second worker")
	}
}
