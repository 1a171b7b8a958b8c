package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
)

// State is where a job is in its life.
type State string

const (
	// StateAvailable: waiting to run now.
	StateAvailable State = "available"
	// StateScheduled: waiting for its RunAt.
	StateScheduled State = "scheduled"
	// StateRetryable: an attempt failed; waiting for its backoff to pass.
	StateRetryable State = "retryable"
	// StateRunning: a worker holds the job's lease.
	StateRunning State = "running"
	// StateCompleted: an attempt succeeded.
	StateCompleted State = "completed"
	// StateDead: the last attempt failed; the job keeps every attempt's
	// error until an operator retries or it is deleted.
	StateDead State = "dead"
	// StateCancelled: an operator cancelled it, or its handler did.
	StateCancelled State = "cancelled"
)

// States lists every state.
var States = []State{StateAvailable, StateScheduled, StateRetryable, StateRunning, StateCompleted, StateDead, StateCancelled}

// pendingStates are the states of jobs that have yet to run; a unique key
// is held while its job is in one of them or running.
var pendingStates = []State{StateAvailable, StateScheduled, StateRetryable}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Job is a unit of work with its arguments and its history.
type Job struct {
	ID          int64           `json:"id"`
	Kind        string          `json:"kind"`
	Queue       string          `json:"queue"`
	Args        json.RawMessage `json:"args"`
	State       State           `json:"state"`
	Priority    int             `json:"priority"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	RunAt       time.Time       `json:"run_at"`
	Timeout     time.Duration   `json:"-"`
	UniqueKey   string          `json:"unique_key,omitempty"`
	Tags        []string        `json:"tags"`
	Errors      []AttemptError  `json:"errors"`
	Created     time.Time       `json:"created"`
	AttemptedAt time.Time       `json:"attempted_at,omitzero"`
	FinishedAt  time.Time       `json:"finished_at,omitzero"`
	// AttemptedBy names the worker that took the last attempt.
	AttemptedBy string `json:"attempted_by,omitempty"`
	// LeaseUntil is when a running job's lease ends unless its worker
	// renews it.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// MarshalJSON writes the job with its timeout in milliseconds.
func (j *Job) MarshalJSON() ([]byte, error) {
	type plain Job
	return json.Marshal(struct {
		*plain
		TimeoutMS int64 `json:"timeout_ms"`
	}{(*plain)(j), j.Timeout.Milliseconds()})
}

// Decode unmarshals the job's arguments into v.
func (j *Job) Decode(v any) error {
	if err := json.Unmarshal(j.Args, v); err != nil {
		return fmt.Errorf("decode args of %s job %d: %w", j.Kind, j.ID, err)
	}
	return nil
}

// AttemptError is the error of one failed attempt.
type AttemptError struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
	// Worker names the worker that ran the attempt.
	Worker string `json:"worker,omitempty"`
}

// WorkFunc runs a job. A nil error completes it; an error fails the
// attempt, and the job is retried after a backoff until its attempts run
// out. ctx ends at the job's timeout, when an operator cancels the job,
// when the worker loses its lease, and when a stop's deadline passes.
type WorkFunc func(ctx context.Context, job *Job) error

// Handle adapts a handler of typed arguments: the job's JSON arguments are
// decoded into a T first; arguments that do not decode fail the job
// without retries.
func Handle[T any](fn func(ctx context.Context, job *Job, args T) error) WorkFunc {
	return func(ctx context.Context, job *Job) error {
		var args T
		if err := job.Decode(&args); err != nil {
			return Permanent(err)
		}
		return fn(ctx, job, args)
	}
}

// EnqueueOptions tune one job. The zero value runs the job now on the
// default queue with the service's defaults.
type EnqueueOptions struct {
	// Queue is the queue; "" means "default".
	Queue string
	// Priority orders the pending jobs of a queue: lower runs first.
	// 0 is the default; it must be within 0 to 100.
	Priority int
	// RunAt delays the job until then; zero means now.
	RunAt time.Time
	// MaxAttempts caps the attempts; 0 means the service's default.
	MaxAttempts int
	// Timeout bounds each attempt; 0 means the service's default.
	Timeout time.Duration
	// UniqueKey, when set, keeps a second job with the same key from being
	// enqueued while the first is pending or running (Enqueue then returns
	// the first with ErrDuplicate). Once the first has finished, the key
	// is free again.
	UniqueKey string
	// Tags label the job for people; they do not change how it runs.
	Tags []string
}

// Errors of the service. They come wrapped in *apperr.Error values whose
// kind says what a client is told; test with errors.Is.
var (
	ErrNotFound    = errors.New("job not found")
	ErrDuplicate   = errors.New("a job with this unique key is pending or running")
	ErrUnknownKind = errors.New("unknown job kind")
	ErrState       = errors.New("job is in the wrong state for this")
)

// errPermanent marks a handler error that must not be retried.
type errPermanent struct{ err error }

func (e *errPermanent) Error() string { return e.err.Error() }
func (e *errPermanent) Unwrap() error { return e.err }

// Permanent marks err so that the job moves to the dead state at once,
// without its remaining attempts: for errors that no retry can fix, such
// as arguments that do not decode.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &errPermanent{err}
}

func notFound(id int64) error {
	return &apperr.Error{Kind: apperr.NotFound, Msg: fmt.Sprintf("job %d not found", id), Err: ErrNotFound}
}

func invalid(format string, args ...any) error {
	return apperr.New(apperr.Invalid, format, args...)
}
