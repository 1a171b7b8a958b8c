package jobs

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkEnqueueTx: one job per transaction, from one goroutine and
// from many (which share commits on SQLite).
func BenchmarkEnqueueTx(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(engine+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				db := storetest.Open(b, engine)
				s := newService(b, fast(db))
				s.Register("bench", func(ctx context.Context, j *Job) error { return nil })
				enqueue := func() {
					err := db.Write(ctx, func(tx *store.Tx) error {
						_, err := s.Enqueue(ctx, tx, "bench", map[string]int{"n": 1}, EnqueueOptions{})
						return err
					})
					if err != nil {
						b.Error(err)
					}
				}
				b.ResetTimer()
				if mode == "serial" {
					for b.Loop() {
						enqueue()
					}
				} else {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							enqueue()
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkEndToEnd: b.N jobs enqueued in transactions of 100, then
// worked by 16 workers until all are completed.
func BenchmarkEndToEnd(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			cfg := fast(db)
			cfg.Queues = map[string]int{"default": 16}
			s := newService(b, cfg)
			var done atomic.Int64
			s.Register("bench", func(ctx context.Context, j *Job) error {
				done.Add(1)
				return nil
			})
			for i := 0; i < b.N; i += 100 {
				err := db.Write(ctx, func(tx *store.Tx) error {
					for k := i; k < min(i+100, b.N); k++ {
						if _, err := s.Enqueue(ctx, tx, "bench", nil, EnqueueOptions{}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for done.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			stop, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s.Stop(stop)
			b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
		})
	}
}

// BenchmarkEnqueueToStart measures the time from Enqueue (its transaction
// included) to the start of the job's handler, one job at a time with
// idle workers, and reports its median and 99th percentile:
//
//   - same-node: the job is enqueued on the node that works its queue;
//     the commit wakes the node's idle workers at once, whatever the
//     PollInterval (left at its default, 1s, here).
//   - other-node: the job is enqueued by another node (a Service that
//     was not started, as an api node is); the workers find it at their
//     next poll, so the wait is spread over one PollInterval (50ms here;
//     1s by default). Each job is enqueued at a random point of the poll
//     cycle.
func BenchmarkEnqueueToStart(b *testing.B) {
	const poll = 50 * time.Millisecond
	for _, engine := range storetest.Engines(b) {
		for _, path := range []string{"same-node", "other-node/poll=50ms"} {
			b.Run(engine+"/"+path, func(b *testing.B) {
				ctx := context.Background()
				db := storetest.Open(b, engine)
				cfg := fast(db)
				cfg.PollInterval = 0 // the default
				if path != "same-node" {
					cfg.PollInterval = poll
				}
				worker := newService(b, cfg)
				started := make(chan time.Time, 1)
				handler := func(ctx context.Context, j *Job) error {
					started <- time.Now()
					return nil
				}
				worker.Register("bench", handler)
				enqueuer := worker
				if path != "same-node" {
					ecfg := cfg
					ecfg.Node = "api"
					enqueuer = newService(b, ecfg)
					enqueuer.Register("bench", handler)
				}
				start(b, worker)
				lat := make([]time.Duration, 0, b.N)
				for b.Loop() {
					if path != "same-node" {
						b.StopTimer()
						time.Sleep(rand.N(poll))
						b.StartTimer()
					}
					t0 := time.Now()
					err := db.Write(ctx, func(tx *store.Tx) error {
						_, err := enqueuer.Enqueue(ctx, tx, "bench", nil, EnqueueOptions{})
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					select {
					case t1 := <-started:
						lat = append(lat, t1.Sub(t0))
					case <-time.After(10 * time.Second):
						b.Fatal("the job did not start within 10s")
					}
				}
				slices.Sort(lat)
				pct := func(p float64) float64 {
					return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
				}
				b.ReportMetric(pct(0.50), "p50-ms")
				b.ReportMetric(pct(0.99), "p99-ms")
			})
		}
	}
}
