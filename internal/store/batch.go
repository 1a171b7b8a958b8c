package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Group commit for SQLite. SQLite has one writer at a time, and every
// commit appends its pages to the WAL; one goroutine that takes the writes
// waiting in the queue, runs each inside a savepoint of one transaction and
// commits once serves many writers for the price of one commit. A write that
// fails is rolled back to its savepoint and leaves the others alone; a
// write is answered only after the commit that holds it, so acknowledged
// writes are as durable as with one transaction each.

// The statements around each write of a batch. Every write's savepoint is
// released (after a rollback to it, if the write failed) before the next
// begins, so one name serves them all, and the statement cache keeps
// these three prepared (see cacheable).
const (
	savepoint  = "SAVEPOINT w"
	rollbackTo = "ROLLBACK TO w"
	release    = "RELEASE w"
)

// maxBatch bounds how many writes share one commit.
const maxBatch = 128

var errClosed = errors.New("store: closed")

type writeReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

// batcher owns the SQLite writer connection.
type batcher struct {
	db     *sql.DB
	mu     sync.RWMutex // held for reading while sending to queue
	closed bool
	queue  chan *writeReq
	done   chan struct{}
	// observe, when set, is told the size of every batch (for tests).
	observe   func(n int)
	obs       *observer
	batchSize prometheus.Observer // nil when not exported
}

func newBatcher(db *sql.DB) *batcher {
	b := &batcher{db: db, queue: make(chan *writeReq, maxBatch), done: make(chan struct{})}
	go b.loop()
	return b
}

// write queues fn and waits for the commit that holds it. It waits even
// when ctx ends meanwhile: once queued, the outcome is only known then.
func (b *batcher) write(ctx context.Context, fn func(*Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.queue <- req:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	return <-req.done
}

// close stops taking writes, lets the queued ones finish and waits for the
// loop to end.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]*writeReq, 0, maxBatch)
	for first := range b.queue {
		batch = b.drain(append(batch[:0], first))
		if len(batch) > 1 {
			// Writes are arriving together: let the goroutines that are
			// about to queue theirs run first, and take them into this
			// commit. Under load this multiplies the writes per commit,
			// each of which costs its WAL frames, a wakeup of this loop
			// and, now and then, a checkpoint; a lone write does not wait.
			runtime.Gosched()
			batch = b.drain(batch)
		}
		if b.observe != nil {
			b.observe(len(batch))
		}
		if b.batchSize != nil {
			b.batchSize.Observe(float64(len(batch)))
		}
		b.commit(batch)
	}
}

// drain adds to batch the writes waiting in the queue, up to maxBatch.
func (b *batcher) drain(batch []*writeReq) []*writeReq {
	for len(batch) < maxBatch {
		select {
		case r, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction and answers every request.
func (b *batcher) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	txs := make([]*Tx, len(batch))
	fail := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	ctx := context.Background()
	sqlTx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		fail(fmt.Errorf("store: begin: %w", err))
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := sqlTx.ExecContext(ctx, savepoint); err != nil {
			_ = sqlTx.Rollback()
			fail(fmt.Errorf("store: savepoint: %w", err))
			return
		}
		tx := &Tx{Tx: sqlTx, Dialect: sqliteDialect, batched: true, obs: b.obs}
		errs[i] = run(r.fn, tx)
		if errs[i] != nil {
			_, err = sqlTx.ExecContext(ctx, rollbackTo)
		}
		if err == nil {
			_, err = sqlTx.ExecContext(ctx, release)
		}
		if err != nil {
			_ = sqlTx.Rollback()
			fail(fmt.Errorf("store: end savepoint: %w", err))
			return
		}
		txs[i] = tx
	}
	start := time.Now()
	err = sqlTx.Commit()
	b.obs.duration[opCommit].Observe(time.Since(start).Seconds())
	if err != nil {
		fail(classifySQLite(fmt.Errorf("store: commit: %w", err)))
		return
	}
	for i, r := range batch {
		if errs[i] == nil {
			for _, f := range txs[i].after {
				f()
			}
		}
		r.done <- errs[i]
	}
}

// run calls fn, turning a panic into an error: it runs on the writer
// goroutine, where a panic would end the process.
func run(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("store: write panicked: %v", v)
		}
	}()
	return fn(tx)
}
